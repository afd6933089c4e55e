-- Retention of records (SQLite): how many years each kind of record is kept
-- (`retention_policy`, written from `[retention]` at every start), when each record's
-- period ends (the `*_retention` views), and triggers that refuse to delete a record, or
-- anything kept with it, before then (gateway/src/retention.rs says why and how).
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
select id, kind, ends_at, coalesce(ends_at <= datetime('now'), 0) as ended
from (
    select r.id, r.kind, datetime(max(
            datetime(r.updated_at),
            coalesce((select max(datetime(a.created_at)) from attachment a
                      where a.request_id = r.id), datetime(r.updated_at)),
            coalesce((select max(datetime(m.created_at)) from room_message m
                      where m.room = 'consultation-' || r.id), datetime(r.updated_at))
        ), '+' || p.years || ' years') as ends_at
    from consult_request r
    left join retention_policy p on p.kind = r.kind
);

create view ward_round_retention as
select id, ends_at, coalesce(ends_at <= datetime('now'), 0) as ended
from (
    select w.id, datetime(max(
            datetime(w.created_at),
            datetime(w.ends_at),
            coalesce(datetime(w.cancelled_at), datetime(w.created_at)),
            coalesce((select max(datetime(n.note_at)) from ward_round_patient n
                      where n.round_id = w.id), datetime(w.created_at))
        ), '+' || p.years || ' years') as ends_at
    from ward_round w
    left join retention_policy p on p.kind = 'ward_round'
);

create view teaching_retention as
select id, ends_at, coalesce(ends_at <= datetime('now'), 0) as ended
from (
    select t.id, datetime(max(
            datetime(t.created_at),
            datetime(t.ends_at),
            coalesce(datetime(t.cancelled_at), datetime(t.created_at)),
            coalesce((select max(datetime(coalesce(a.left_at, a.joined_at))) from attendance a
                      where a.session_id = t.id), datetime(t.created_at))
        ), '+' || p.years || ' years') as ends_at
    from teaching_session t
    left join retention_policy p on p.kind = 'teaching'
);

-- A record, and what is kept with it, is deleted only once its period has ended. A booked
-- slot is not kept with it: a new time replaces it (the steps record each time), and the
-- purge deletes what is left.
create trigger consult_request_retained before delete on consult_request
when not exists (select 1 from request_retention v where v.id = old.id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger request_event_retained before delete on request_event
when not exists (select 1 from request_retention v where v.id = old.request_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger opinion_retained before delete on opinion
when not exists (select 1 from request_retention v where v.id = old.request_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger attachment_retained before delete on attachment
when not exists (select 1 from request_retention v where v.id = old.request_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;


create trigger notification_retained before delete on notification
when old.request_id is not null
 and not exists (select 1 from request_retention v where v.id = old.request_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger ward_round_retained before delete on ward_round
when not exists (select 1 from ward_round_retention v where v.id = old.id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger ward_round_patient_retained before delete on ward_round_patient
when not exists (select 1 from ward_round_retention v where v.id = old.round_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger teaching_session_retained before delete on teaching_session
when not exists (select 1 from teaching_retention v where v.id = old.id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger enrolment_retained before delete on enrolment
when not exists (select 1 from teaching_retention v where v.id = old.session_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger attendance_retained before delete on attendance
when not exists (select 1 from teaching_retention v where v.id = old.session_id and v.ended)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

-- A session's chat and presence are kept with its request, round or teaching session.

create trigger room_message_retained before delete on room_message
when not (
    (old.room like 'consultation-%' and exists (select 1 from request_retention v
        where v.id = cast(substr(old.room, 14) as integer) and v.ended))
    or (old.room like 'ward-round-%' and exists (select 1 from ward_round_retention v
        where v.id = cast(substr(old.room, 12) as integer) and v.ended))
    or (old.room like 'teaching-%' and exists (select 1 from teaching_retention v
        where v.id = cast(substr(old.room, 10) as integer) and v.ended))
)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;

create trigger room_presence_retained before delete on room_presence
when not (
    (old.room like 'consultation-%' and exists (select 1 from request_retention v
        where v.id = cast(substr(old.room, 14) as integer) and v.ended))
    or (old.room like 'ward-round-%' and exists (select 1 from ward_round_retention v
        where v.id = cast(substr(old.room, 12) as integer) and v.ended))
    or (old.room like 'teaching-%' and exists (select 1 from teaching_retention v
        where v.id = cast(substr(old.room, 10) as integer) and v.ended))
)
begin
    select raise(abort, 'kept for its retention period: not deletable before it ends');
end;
