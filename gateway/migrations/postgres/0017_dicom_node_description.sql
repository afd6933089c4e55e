-- What each DICOM node is, in the words of the people who keep it (PostgreSQL):
-- "CT室 GE Revolution", "放射科 PACS".
alter table dicom_node add column description text not null default '';
