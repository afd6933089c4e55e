-- Attendance of teaching sessions from media (SQLite): the seconds in which the forwarding
-- unit actually delivered media to the trainee during a stretch. Null for stretches
-- recorded by hand.
alter table attendance add column received_seconds integer;
