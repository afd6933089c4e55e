-- Remote consultation and read requests, their steps, opinions and the audit log (SQLite).

create table consult_request (
    id integer primary key,
    kind text not null check (kind in ('consultation', 'imaging_read', 'pathology_read')),
    state text not null,
    version integer not null,
    requester_user_id integer not null references app_user (id),
    requester_institution_id integer not null references institution (id),
    pairing_id integer not null references pairing (id),
    supporter_kind text not null,
    supporter_id integer not null,
    supporter_institution_id integer not null references institution (id),
    urgency text not null check (urgency in ('normal', 'urgent')),
    remote boolean not null,
    -- Everything the requester fills in, as validated JSON: reason, purpose, window, case
    -- summary, specialty, minimum title, patient, consent. Patient data lives only here.
    content text not null,
    consultant_id integer references clinician (id),
    decline_code text,
    decline_text text,
    scheduled_start text,
    scheduled_end text,
    decision_due_at text,
    created_at text not null,
    submitted_at text,
    updated_at text not null
);
create index consult_request_requester on consult_request (requester_institution_id, state);
create index consult_request_supporter on consult_request (supporter_institution_id, state);

create table request_event (
    id integer primary key,
    request_id integer not null references consult_request (id),
    from_state text,
    to_state text not null,
    actor_user_id integer references app_user (id),
    at text not null,
    note text
);
create index request_event_request on request_event (request_id);

create table opinion (
    id integer primary key,
    request_id integer not null references consult_request (id),
    version integer not null,
    amends_id integer references opinion (id),
    consultant_id integer not null references clinician (id),
    author_user_id integer not null references app_user (id),
    body text not null,
    status text not null check (status in ('draft', 'signed')),
    created_at text not null,
    signed_at text,
    unique (request_id, version)
);

-- Every read and change of patient data, and every refused attempt. Append-only: no API
-- changes or deletes it.
create table audit_log (
    id integer primary key,
    at text not null,
    user_id integer references app_user (id),
    roles text not null,
    institution_id integer,
    action text not null,
    object_kind text not null,
    object_id integer,
    outcome text not null check (outcome in ('allowed', 'denied')),
    detail text
);
create index audit_log_object on audit_log (object_kind, object_id);
