-- Teaching sessions with enrolment and attendance; on-site visits to villages (SQLite).

create table teaching_session (
    id integer primary key,
    presenter_clinician_id integer not null references clinician (id),
    presenter_institution_id integer not null references institution (id),
    topic text not null,
    starts_at text not null,
    ends_at text not null,
    capacity integer not null check (capacity > 0),
    created_by integer not null references app_user (id),
    created_at text not null
);

create table enrolment (
    id integer primary key,
    session_id integer not null references teaching_session (id),
    user_id integer not null references app_user (id),
    institution_id integer not null references institution (id),
    status text not null check (status in ('enrolled', 'waiting', 'withdrawn')),
    created_at text not null,
    unique (session_id, user_id)
);

create table attendance (
    id integer primary key,
    session_id integer not null references teaching_session (id),
    user_id integer not null references app_user (id),
    joined_at text not null,
    left_at text,
    recorded_by integer references app_user (id)
);
create index attendance_session on attendance (session_id, user_id);

-- On-site visits (巡诊, 坐诊) recorded by coordinators: they count as service to a village.
create table visit (
    id integer primary key,
    village_id integer not null references institution (id),
    visit_date text not null,
    team_id integer references team (id),
    clinician_id integer references clinician (id),
    services text not null,
    notes text,
    recorded_by integer not null references app_user (id),
    recorded_at text not null
);
create index visit_village on visit (village_id, visit_date);
