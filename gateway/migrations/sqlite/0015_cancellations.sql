-- Teaching sessions and ward rounds are cancelled with a reason by the people who
-- organise them (SQLite). A cancelled one stays in the record, with who cancelled it,
-- when and why; it takes no enrolment and its room does not open.
alter table teaching_session add column cancelled_at text;
alter table teaching_session add column cancelled_by integer references app_user (id);
alter table teaching_session add column cancel_reason text;

alter table ward_round add column cancelled_at text;
alter table ward_round add column cancelled_by integer references app_user (id);
alter table ward_round add column cancel_reason text;
