-- A pairing's yearly training target, as its responsibility letter sets it (PostgreSQL):
-- how many trainees of the supported side, each reaching how many hours of training in
-- the year (004: 每年为受援医院培训至少3名骨干医师). A year without a row takes the
-- program's defaults from the configuration ([program]).
create table pairing_target (
    pairing_id bigint not null references pairing (id),
    year integer not null check (year between 2000 and 2100),
    trainees integer not null check (trainees between 1 and 1000),
    hours_each integer not null check (hours_each between 1 and 2000),
    set_by bigint not null references app_user (id),
    set_at timestamptz not null,
    primary key (pairing_id, year)
);
