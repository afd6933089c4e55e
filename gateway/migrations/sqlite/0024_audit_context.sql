-- What an audit entry names besides the user (SQLite): the object by a reference that is
-- not a number (a study, series or instance UID), the patient concerned (so a supervisor
-- finds who looked at one patient's records), and the client's address. All three are
-- part of the entry's link in the chain, and the triggers keep them as written.
alter table audit_log add column object_ref text;
alter table audit_log add column patient text;
alter table audit_log add column client text;
create index audit_log_at on audit_log (at);
create index audit_log_patient on audit_log (patient) where patient is not null;

drop trigger audit_log_no_update;
create trigger audit_log_no_update before update on audit_log
when old.hash is not null
  or new.at is not old.at or new.user_id is not old.user_id or new.roles is not old.roles
  or new.institution_id is not old.institution_id or new.action is not old.action
  or new.object_kind is not old.object_kind or new.object_id is not old.object_id
  or new.outcome is not old.outcome or new.detail is not old.detail or new.id is not old.id
  or new.object_ref is not old.object_ref or new.patient is not old.patient
  or new.client is not old.client
begin
    select raise(abort, 'the audit log is append-only');
end;
