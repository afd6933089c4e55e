-- Request attachments, ward rounds, and the notification outbox (SQLite).

create table attachment (
    id integer primary key,
    request_id integer not null references consult_request (id),
    filename text not null,
    content_type text not null,
    size integer not null,
    sha256 text not null,
    uploaded_by integer not null references app_user (id),
    created_at text not null,
    unique (request_id, sha256)
);

-- A remote ward round (远程查房) between a supporting team and a supported ward.
create table ward_round (
    id integer primary key,
    team_id integer not null references team (id),
    supported_institution_id integer not null references institution (id),
    ward text not null,
    starts_at text not null,
    ends_at text not null,
    series_id integer,
    created_by integer not null references app_user (id),
    created_at text not null
);
create index ward_round_institution on ward_round (supported_institution_id, starts_at);

create table ward_round_patient (
    id integer primary key,
    round_id integer not null references ward_round (id),
    bed text not null,
    patient_name text not null,
    question text not null,
    note text,
    note_by integer references app_user (id),
    note_at text
);

-- State changes waiting to go out as webhooks; delivered at least once, with backoff.
create table outbox (
    id integer primary key,
    institution_id integer not null references institution (id),
    event text not null,
    payload text not null,
    attempts integer not null default 0,
    next_attempt_at text not null,
    delivered_at text,
    last_error text,
    -- One message per (request, event) at most, e.g. a single overdue notice.
    dedupe_key text unique,
    created_at text not null
);
create index outbox_pending on outbox (delivered_at, next_attempt_at);

create table webhook (
    institution_id integer primary key references institution (id),
    url text not null,
    secret text not null,
    created_at text not null
);
