-- The spool keeps instances as records in segment files: an instance is `size` bytes
-- from `byte_offset` in `path`. Instances kept as whole files start at 0.
alter table dicom_instance add column byte_offset bigint not null default 0;
-- Where each segment's indexed records end, read at start to find unindexed ones.
create index dicom_instance_place on dicom_instance (path, byte_offset);
