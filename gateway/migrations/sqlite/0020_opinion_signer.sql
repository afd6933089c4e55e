-- Who signed an opinion, as they stood when signing (SQLite): name, professional title and
-- institution are kept with the signed version, which never changes, so that its signer
-- block and document hash stay the same when the clinician's record changes later.
alter table opinion add column signer_name text;
alter table opinion add column signer_title text;
alter table opinion add column signer_institution text;
