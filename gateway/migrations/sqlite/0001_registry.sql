-- Registry, users and sessions (SQLite). Schema only: data lives in seeds/.
-- Timestamps are RFC 3339 text in UTC, dates are 'YYYY-MM-DD' text.

create table institution (
    id integer primary key,
    name text not null,
    level text not null,
    kind text not null,
    region_path text not null,
    remote boolean not null default false,
    created_at text not null,
    unique (region_path, name)
);
create index institution_region on institution (region_path);

create table clinician (
    id integer primary key,
    name text not null,
    sex text check (sex in ('M', 'F')),
    institution_id integer not null references institution (id),
    title text not null,
    title_rank text not null,
    specialty text not null,
    licence_number text unique,
    practice_years integer,
    created_at text not null
);
create index clinician_institution on clinician (institution_id);

create table team (
    id integer primary key,
    name text not null,
    institution_id integer not null references institution (id),
    leader_id integer not null references clinician (id),
    created_at text not null,
    unique (institution_id, name)
);

create table team_member (
    team_id integer not null references team (id),
    clinician_id integer not null references clinician (id),
    primary key (team_id, clinician_id)
);

create table app_user (
    id integer primary key,
    username text not null unique,
    display_name text not null,
    institution_id integer not null references institution (id),
    clinician_id integer references clinician (id),
    roles text not null,
    password_hash text not null,
    disabled boolean not null default false,
    created_at text not null
);

-- The current version of each pairing; every version, this one included, is in
-- pairing_version with who changed it, when and why.
create table pairing (
    id integer primary key,
    version integer not null,
    supporter_institution_id integer references institution (id),
    supporter_team_id integer references team (id),
    supporter_clinician_id integer references clinician (id),
    supported_institution_id integer references institution (id),
    supported_region text,
    services text not null,
    valid_from text not null,
    valid_to text not null,
    status text not null check (status in ('active', 'ended')),
    seed_key text unique,
    check ((supporter_institution_id is not null) + (supporter_team_id is not null)
           + (supporter_clinician_id is not null) = 1),
    check ((supported_institution_id is null) <> (supported_region is null)),
    check (valid_from <= valid_to)
);
create index pairing_supported on pairing (supported_institution_id);

create table pairing_version (
    id integer primary key,
    pairing_id integer not null references pairing (id),
    version integer not null,
    action text not null check (action in ('created', 'changed', 'ended')),
    supporter_institution_id integer,
    supporter_team_id integer,
    supporter_clinician_id integer,
    supported_institution_id integer,
    supported_region text,
    services text not null,
    valid_from text not null,
    valid_to text not null,
    status text not null,
    changed_by integer references app_user (id),
    changed_at text not null,
    reason text,
    unique (pairing_id, version)
);

create table user_session (
    token_hash text primary key,
    user_id integer not null references app_user (id),
    created_at text not null,
    expires_at text not null
);
create index user_session_user on user_session (user_id);

create table login_throttle (
    username text primary key,
    failures integer not null,
    locked_until text
);

create table seed_import (
    digest text primary key,
    imported_at text not null,
    institutions integer not null,
    clinicians integer not null,
    pairings integer not null
);
