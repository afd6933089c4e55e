-- An installation built by `duikou demo` says so: its pages carry a banner, and `demo`
-- starts again on it while it refuses a directory with real data.
create table demo_installation (
    id integer primary key check (id = 1),
    built_at text not null
);
