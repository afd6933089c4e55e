-- Notices beyond the pages (PostgreSQL): a person's e-mail address and whether they want
-- notices by e-mail; an institution's chat group robot (WeCom, DingTalk, Feishu incoming
-- webhook) told of urgent requests. Both go through the outbox, now with a channel.
alter table app_user add column email text;
alter table app_user add column email_notices boolean not null default false;

create table chat_robot (
    institution_id bigint primary key references institution (id),
    kind text not null check (kind in ('wecom', 'dingtalk', 'feishu')),
    url text not null,
    secret text,
    created_at timestamptz not null
);

alter table outbox add column channel text not null default 'webhook'
    check (channel in ('webhook', 'email', 'chat'));
alter table outbox add column user_id bigint references app_user (id);
