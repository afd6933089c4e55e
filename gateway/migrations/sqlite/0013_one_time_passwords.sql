-- A password someone else set (the first administrator's, a generated or reset one) must
-- be replaced by its user before anything else; the last successful login is shown to
-- the people who manage accounts.
alter table app_user add column must_change_password boolean not null default false;
alter table app_user add column last_login_at text;
