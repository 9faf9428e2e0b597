-- The reference e-service's tables. Applied by the `migrate` action (role app runs it after each
-- deployment): every statement may run again without harm.
create table if not exists submissions (
    id uuid primary key,
    receipt text not null unique,
    secret_hash bytea not null unique,      -- SHA-256 of the citizen's secret link; the link itself is never stored
    procedure text not null,
    full_name text not null,
    email text not null,
    message text not null default '',
    status text not null default 'received',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table if not exists documents (
    id uuid primary key,
    submission_id uuid not null references submissions (id) on delete cascade,
    filename text not null,
    content_type text not null,
    size integer not null,
    kek_id text not null,                   -- which key-encryption key wrapped the data key
    wrapped_key bytea not null,             -- the document's data key, wrapped (RFC 3394)
    nonce bytea not null,
    ciphertext bytea not null,              -- AES-256-GCM, bound to the document's id
    created_at timestamptz not null default now()
);
create index if not exists documents_submission on documents (submission_id);
create index if not exists documents_kek on documents (kek_id);

create table if not exists agent_sessions (
    token_hash bytea primary key,           -- SHA-256 of the session cookie; the cookie itself is never stored
    login text not null,
    csrf_token text not null,
    created_at timestamptz not null default now(),
    last_seen timestamptz not null default now()
);

create table if not exists status_history (
    submission_id uuid not null references submissions (id) on delete cascade,
    status text not null,
    agent text not null,
    at timestamptz not null default now()
);
