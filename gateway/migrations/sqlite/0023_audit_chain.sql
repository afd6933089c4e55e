-- The audit log as a hash chain (SQLite): each entry's `hash` is the SHA-256 of the
-- previous entry's hash and of its own content (gateway/src/audit.rs says how), so that a
-- changed, removed or reordered entry breaks the chain where `duikou audit verify` finds
-- it. Entries are never changed or deleted: the triggers refuse it. The one change let
-- through is the chaining, once, of an entry written before the chain existed.
alter table audit_log add column hash text;

create trigger audit_log_no_update before update on audit_log
when old.hash is not null
  or new.at is not old.at or new.user_id is not old.user_id or new.roles is not old.roles
  or new.institution_id is not old.institution_id or new.action is not old.action
  or new.object_kind is not old.object_kind or new.object_id is not old.object_id
  or new.outcome is not old.outcome or new.detail is not old.detail or new.id is not old.id
begin
    select raise(abort, 'the audit log is append-only');
end;

create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'the audit log is append-only');
end;
