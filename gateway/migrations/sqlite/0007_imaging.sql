-- The imaging relay (SQLite): DICOM nodes that may send to it, and the index of the
-- instances it stores (their files live in the spool under the data directory).

-- A calling AE title of an institution's modality or PACS, and the host it calls from
-- ('*' for any). Associations from anyone else are rejected.
create table dicom_node (
    id integer primary key,
    institution_id integer not null references institution (id),
    ae_title text not null unique,
    host text not null,
    created_at text not null
);

-- One stored instance. Patient attributes are here for search (QIDO-RS) and for nothing
-- else; they never reach logs.
create table dicom_instance (
    id integer primary key,
    sop_instance_uid text not null unique,
    sop_class_uid text not null,
    study_instance_uid text not null,
    series_instance_uid text not null,
    patient_id text not null,
    patient_name text not null,
    patient_birth_date text not null,
    patient_sex text not null,
    study_date text not null,
    study_time text not null,
    study_description text not null,
    accession_number text not null,
    modality text not null,
    series_number integer,
    instance_number integer,
    transfer_syntax text not null,
    size integer not null,
    path text not null,
    calling_ae text not null,
    institution_id integer not null references institution (id),
    received_at text not null
);
create index dicom_instance_study on dicom_instance (study_instance_uid);
create index dicom_instance_series on dicom_instance (series_instance_uid);
create index dicom_instance_institution on dicom_instance (institution_id, received_at);
