-- Consultants' weekly availability, its exceptions, and booked slots (SQLite).
-- Times of day are local to China (UTC+8, 'HH:MM'); booked slots are UTC instants.

create table availability (
    id integer primary key,
    clinician_id integer not null references clinician (id),
    weekday integer not null check (weekday between 1 and 7),
    start_time text not null,
    end_time text not null,
    slot_minutes integer not null check (slot_minutes between 5 and 240),
    valid_from text not null,
    valid_to text,
    created_by integer not null references app_user (id),
    created_at text not null
);
create index availability_clinician on availability (clinician_id);

create table availability_exception (
    id integer primary key,
    clinician_id integer not null references clinician (id),
    day text not null,
    start_time text,
    end_time text,
    reason text not null,
    created_by integer not null references app_user (id),
    created_at text not null
);
create index availability_exception_clinician on availability_exception (clinician_id, day);

-- One row per booked slot: the unique key is what makes booking atomic.
create table slot_booking (
    id integer primary key,
    clinician_id integer not null references clinician (id),
    start_at text not null,
    end_at text not null,
    request_id integer not null references consult_request (id),
    created_at text not null,
    unique (clinician_id, start_at)
);
