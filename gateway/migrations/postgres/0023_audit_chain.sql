-- The audit log as a hash chain (PostgreSQL): each entry's `hash` is the SHA-256 of the
-- previous entry's hash and of its own content (gateway/src/audit.rs says how), so that a
-- changed, removed or reordered entry breaks the chain where `duikou audit verify` finds
-- it. Entries are never changed or deleted: the triggers refuse it (TRUNCATE too). The
-- one change let through is the chaining, once, of an entry written before the chain
-- existed. The table's owner can disable triggers; the chain is what shows it then.
alter table audit_log add column hash text;

create function audit_log_append_only() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' and old.hash is null and new.hash is not null
       and (new.id, new.at, new.user_id, new.roles, new.institution_id, new.action,
            new.object_kind, new.object_id, new.outcome, new.detail)
           is not distinct from
           (old.id, old.at, old.user_id, old.roles, old.institution_id, old.action,
            old.object_kind, old.object_id, old.outcome, old.detail) then
        return new;
    end if;
    raise exception 'the audit log is append-only';
end;
$$;

create trigger audit_log_no_update before update or delete on audit_log
for each row execute function audit_log_append_only();

create trigger audit_log_no_truncate before truncate on audit_log
for each statement execute function audit_log_append_only();
