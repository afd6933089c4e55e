-- Retention of records (PostgreSQL): how many years each kind of record is kept
-- (`retention_policy`, written from `[retention]` at every start; with
-- `database.owner_url` by the owner only), when each record's period ends (the
-- `*_retention` views), and triggers that refuse to delete a record, or anything kept
-- with it, before then, and to truncate any of them (gateway/src/retention.rs says why
-- and how). The tables' owner can disable triggers; the audit chain shows what was
-- purged through the gateway, and nothing else.
--
-- A period counts from the record's last change, by the database's own clock:
-- a request's `updated_at`, or a later attachment or chat message of its room (written
-- without touching the request); a ward round's creation, end, cancellation or latest
-- note on a patient; a teaching session's creation, end, cancellation or latest
-- attendance. No policy row for a kind: its records are never deleted.
create table retention_policy (
    kind text primary key
        check (kind in ('consultation', 'imaging_read', 'pathology_read', 'ward_round', 'teaching')),
    years integer not null,
    -- 医疗机构病历管理规定: outpatient records at least 15 years, inpatient 30.
    check (years >= case kind when 'ward_round' then 30 when 'teaching' then 1 else 15 end)
);

-- When each record's period ends (null: no policy, never), and whether it has.
create view request_retention as
select r.id, r.kind, e.ends_at, coalesce(e.ends_at <= now(), false) as ended
from consult_request r
left join retention_policy p on p.kind = r.kind
cross join lateral (
    select greatest(
        r.updated_at,
        (select max(a.created_at) from attachment a where a.request_id = r.id),
        (select max(m.created_at) from room_message m where m.room = 'consultation-' || r.id)
    ) + make_interval(years => p.years) as ends_at
) e;

create view ward_round_retention as
select w.id, e.ends_at, coalesce(e.ends_at <= now(), false) as ended
from ward_round w
left join retention_policy p on p.kind = 'ward_round'
cross join lateral (
    select greatest(
        w.created_at, w.ends_at, w.cancelled_at,
        (select max(n.note_at) from ward_round_patient n where n.round_id = w.id)
    ) + make_interval(years => p.years) as ends_at
) e;

create view teaching_retention as
select t.id, e.ends_at, coalesce(e.ends_at <= now(), false) as ended
from teaching_session t
left join retention_policy p on p.kind = 'teaching'
cross join lateral (
    select greatest(
        t.created_at, t.ends_at, t.cancelled_at,
        (select max(coalesce(a.left_at, a.joined_at)) from attendance a where a.session_id = t.id)
    ) + make_interval(years => p.years) as ends_at
) e;

-- A record, and what is kept with it, is deleted only once its period has ended; none
-- of their tables is truncated. Arguments: the record's kind (`request`, `ward_round`,
-- `teaching`, or `room` for a session's chat and presence, named by their room) and the
-- column holding its id; a third (`optional`) lets rows that name no record go. A booked
-- slot is not kept with its request: a new time replaces it (the steps record each time),
-- and the purge deletes what is left.
create function retention_guard() returns trigger language plpgsql as $$
declare
    record_kind text := tg_argv[0];
    record_id bigint;
    room text;
    ended boolean;
begin
    if tg_op = 'TRUNCATE' then
        raise exception 'kept for its retention period: % is never truncated', tg_table_name;
    end if;
    if record_kind = 'room' then
        room := to_jsonb(old) ->> 'room';
        if room ~ '^consultation-[0-9]+$' then
            record_kind := 'request';
            record_id := substr(room, 14)::bigint;
        elsif room ~ '^ward-round-[0-9]+$' then
            record_kind := 'ward_round';
            record_id := substr(room, 12)::bigint;
        elsif room ~ '^teaching-[0-9]+$' then
            record_kind := 'teaching';
            record_id := substr(room, 10)::bigint;
        end if;
    else
        record_id := (to_jsonb(old) ->> tg_argv[1])::bigint;
        if record_id is null and tg_nargs > 2 then
            return old;
        end if;
    end if;
    ended := case record_kind
        when 'request' then (select v.ended from request_retention v where v.id = record_id)
        when 'ward_round' then (select v.ended from ward_round_retention v where v.id = record_id)
        when 'teaching' then (select v.ended from teaching_retention v where v.id = record_id)
    end;
    if coalesce(ended, false) then
        return old;
    end if;
    raise exception 'kept for its retention period: not deletable before it ends';
end;
$$;

create trigger consult_request_retained before delete on consult_request
for each row execute function retention_guard('request', 'id');
create trigger consult_request_not_truncated before truncate on consult_request
for each statement execute function retention_guard('request', 'id');

create trigger request_event_retained before delete on request_event
for each row execute function retention_guard('request', 'request_id');
create trigger request_event_not_truncated before truncate on request_event
for each statement execute function retention_guard('request', 'request_id');

create trigger opinion_retained before delete on opinion
for each row execute function retention_guard('request', 'request_id');
create trigger opinion_not_truncated before truncate on opinion
for each statement execute function retention_guard('request', 'request_id');

create trigger attachment_retained before delete on attachment
for each row execute function retention_guard('request', 'request_id');
create trigger attachment_not_truncated before truncate on attachment
for each statement execute function retention_guard('request', 'request_id');

create trigger notification_retained before delete on notification
for each row execute function retention_guard('request', 'request_id', 'optional');
create trigger notification_not_truncated before truncate on notification
for each statement execute function retention_guard('request', 'request_id', 'optional');

create trigger ward_round_retained before delete on ward_round
for each row execute function retention_guard('ward_round', 'id');
create trigger ward_round_not_truncated before truncate on ward_round
for each statement execute function retention_guard('ward_round', 'id');

create trigger ward_round_patient_retained before delete on ward_round_patient
for each row execute function retention_guard('ward_round', 'round_id');
create trigger ward_round_patient_not_truncated before truncate on ward_round_patient
for each statement execute function retention_guard('ward_round', 'round_id');

create trigger teaching_session_retained before delete on teaching_session
for each row execute function retention_guard('teaching', 'id');
create trigger teaching_session_not_truncated before truncate on teaching_session
for each statement execute function retention_guard('teaching', 'id');

create trigger enrolment_retained before delete on enrolment
for each row execute function retention_guard('teaching', 'session_id');
create trigger enrolment_not_truncated before truncate on enrolment
for each statement execute function retention_guard('teaching', 'session_id');

create trigger attendance_retained before delete on attendance
for each row execute function retention_guard('teaching', 'session_id');
create trigger attendance_not_truncated before truncate on attendance
for each statement execute function retention_guard('teaching', 'session_id');

create trigger room_message_retained before delete on room_message
for each row execute function retention_guard('room', 'room');
create trigger room_message_not_truncated before truncate on room_message
for each statement execute function retention_guard('room', 'room');

create trigger room_presence_retained before delete on room_presence
for each row execute function retention_guard('room', 'room');
create trigger room_presence_not_truncated before truncate on room_presence
for each statement execute function retention_guard('room', 'room');
