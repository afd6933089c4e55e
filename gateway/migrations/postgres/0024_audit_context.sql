-- What an audit entry names besides the user (PostgreSQL): the object by a reference that
-- is not a number (a study, series or instance UID), the patient concerned (so a
-- supervisor finds who looked at one patient's records), and the client's address. All
-- three are part of the entry's link in the chain, and the trigger keeps them as written.
alter table audit_log add column object_ref text;
alter table audit_log add column patient text;
alter table audit_log add column client text;
create index audit_log_at on audit_log (at);
create index audit_log_patient on audit_log (patient) where patient is not null;

create or replace function audit_log_append_only() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' and old.hash is null and new.hash is not null
       and (new.id, new.at, new.user_id, new.roles, new.institution_id, new.action,
            new.object_kind, new.object_id, new.outcome, new.detail, new.object_ref,
            new.patient, new.client)
           is not distinct from
           (old.id, old.at, old.user_id, old.roles, old.institution_id, old.action,
            old.object_kind, old.object_id, old.outcome, old.detail, old.object_ref,
            old.patient, old.client) then
        return new;
    end if;
    raise exception 'the audit log is append-only';
end;
$$;
