-- Years of practice are counted from the day practice began, so that a consultant
-- qualifies on the day they reach three years; a number of years entered earlier is
-- taken as counted back from the day of this migration.
alter table clinician add column practice_since date;
update clinician set practice_since = (current_date - make_interval(years => practice_years))::date
    where practice_years is not null;
alter table clinician drop column practice_years;
