-- The loader's own bookkeeping tables (the flattened FHIR tables are declared as
-- ViewDefinitions in etl/views/ and created from them). Created by etl.store.ensure_schema;
-- every statement is idempotent.

-- One row per `bmc load` run that committed.
CREATE TABLE IF NOT EXISTS load_run (
    load_id      INTEGER PRIMARY KEY,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    options      VARCHAR,          -- JSON: validate, strict, keep_raw
    files_read   INTEGER,
    files_unchanged INTEGER,       -- skipped: same path, size and mtime as an earlier load
    bytes_read   BIGINT,
    resources    BIGINT,           -- records accepted (before version resolution)
    rejected     BIGINT
);

-- One row per input file a load read (or skipped as unchanged).
CREATE TABLE IF NOT EXISTS source_file (
    file_id      INTEGER PRIMARY KEY,
    load_id      INTEGER,
    path         VARCHAR,          -- absolute path
    kind         VARCHAR,          -- ndjson | json
    size         BIGINT,
    mtime_ns     BIGINT,
    sha256       VARCHAR,          -- of the (decompressed) content
    lines        BIGINT,           -- NDJSON lines incl. blank ones; NULL for JSON documents
    blank_lines  BIGINT,
    records      BIGINT,           -- resources and deletions accepted from this file
    rejected     BIGINT,
    non_resource BOOLEAN,          -- the file holds no FHIR resource (e.g. an export log)
    deleted      BOOLEAN,          -- Bulk export deleted/ file
    export_error BOOLEAN           -- manifest error[]/outcome[] file
);

-- Provenance: one row per accepted resource occurrence. `status` says what became of it:
-- current (its rows are in the tables), superseded (a later version won), duplicate (same
-- content as the current version), deleted (a later DELETE removed it), rejected (failed a
-- table rule after parsing, see load_error).
CREATE TABLE IF NOT EXISTS resource (
    _rid          BIGINT,              -- unique, in load order: later loads, files, lines get larger ids
    load_id       INTEGER,
    file_id       INTEGER,
    line          BIGINT,              -- 1-based NDJSON line (NULL in a JSON document)
    entry         VARCHAR,             -- bundle entry path, e.g. entry[3] or entry[3].entry[0]
    resource_type VARCHAR,
    id            VARCHAR,
    id_derived    BOOLEAN,             -- id derived from fullUrl/content (transaction POST)
    version_id    VARCHAR,
    last_updated  VARCHAR,
    content_hash  UBIGINT,             -- DuckDB hash() of the resource JSON text
    full_url      VARCHAR,
    status        VARCHAR
);

-- Deletions: DELETE bundle entries and Bulk export deleted/ files.
CREATE TABLE IF NOT EXISTS deletion (
    _rid          BIGINT,
    load_id       INTEGER,
    file_id       INTEGER,
    line          BIGINT,
    entry         VARCHAR,
    resource_type VARCHAR,
    id            VARCHAR,
    applied       BOOLEAN              -- it removed a resource that was loaded before it
);

-- Identifiers of loaded resources, to resolve conditional references (Type?identifier=s|v).
CREATE TABLE IF NOT EXISTS resource_identifier (
    _rid   BIGINT,
    system VARCHAR,
    value  VARCHAR
);

-- Bundle fullUrls (urn:uuid:..., absolute URLs) of loaded resources.
CREATE TABLE IF NOT EXISTS resource_full_url (
    _rid     BIGINT,
    full_url VARCHAR
);

-- Every record that could not be loaded, and why. Never holds resource content.
CREATE TABLE IF NOT EXISTS load_error (
    load_id       INTEGER,
    file          VARCHAR,
    line          BIGINT,
    entry         VARCHAR,
    resource_type VARCHAR,
    resource_id   VARCHAR,
    reason        VARCHAR
);

-- Data-quality findings in resources that were kept: a value of the wrong JSON type or an
-- invalid date (kind 'value': stored as NULL in the tables), a --validate message (kind
-- 'validation': the resource is loaded as it is). One row per resource, element and reason;
-- never holds the value.
CREATE TABLE IF NOT EXISTS load_issue (
    load_id       INTEGER,
    _rid          BIGINT,          -- the resource's provenance row (resource._rid)
    file          VARCHAR,
    line          BIGINT,
    entry         VARCHAR,
    resource_type VARCHAR,
    resource_id   VARCHAR,
    path          VARCHAR,         -- the element, e.g. Observation.valueQuantity.value
    kind          VARCHAR,         -- value | validation
    reason        VARCHAR
);

-- References that could not be resolved to a loaded resource, rebuilt after every load.
CREATE TABLE IF NOT EXISTS unresolved_reference (
    table_name  VARCHAR,
    column_name VARCHAR,
    _rid        BIGINT,
    reference   VARCHAR,   -- as it stands in the table (raw when it could not be normalised)
    reason      VARCHAR    -- 'unresolvable' (urn/conditional with no match) | 'target not loaded'
                           -- | 'not a Patient reference' (cannot name a resource of the column's type)
);

-- With `bmc load --keep-raw` only: the resource JSON as read.
CREATE TABLE IF NOT EXISTS resource_raw (
    _rid BIGINT,
    json JSON
);
