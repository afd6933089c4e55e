-- Forwarding (SQLite): each institution's DICOM destination, and the forward queue.

-- Where studies for an institution (as the designated imaging supporter) are delivered.
create table imaging_destination (
    institution_id integer primary key references institution (id),
    ae_title text not null,
    host text not null,
    port integer not null check (port between 1 and 65535),
    tls boolean not null,
    updated_at text not null
);

-- One instance to deliver: pending, then sending (next_attempt_at is then the end of the
-- claim's lease), then delivered; failed when retrying cannot help; cancelled by an
-- operator. Queued in the same transaction as the instance is indexed.
create table forward_job (
    id integer primary key,
    instance_id integer not null references dicom_instance (id),
    source_institution_id integer not null references institution (id),
    destination_institution_id integer references institution (id),
    ae_title text not null,
    host text not null,
    port integer not null,
    tls boolean not null,
    state text not null check (state in ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
    attempts integer not null default 0,
    next_attempt_at text not null,
    last_error text,
    created_at text not null,
    delivered_at text
);
create index forward_job_due on forward_job (state, next_attempt_at);
create index forward_job_instance on forward_job (instance_id);
