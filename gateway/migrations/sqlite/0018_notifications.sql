-- What waits for each person (SQLite): one row per person and event, written in the
-- same transaction as the change it tells of (a request submitted, accepted, declined,
-- scheduled, signed, overdue), marked when the person has read it. The dedupe key keeps
-- one row per person for one event of one version of a request.
create table notification (
    id integer primary key,
    user_id integer not null references app_user (id),
    event text not null,
    request_id integer references consult_request (id),
    urgent boolean not null default false,
    dedupe_key text not null unique,
    created_at text not null,
    read_at text
);
create index notification_of_user on notification (user_id, id);
