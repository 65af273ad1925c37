-- The v1 schema exactly as the v1 team describes it (the v1 spec, summarised in docs/migration_v1.md),
-- written out as PostgreSQL DDL in our words: each column with the spec's type and nothing more.
-- Unlike v1_schema.sql (our development DDL) it declares no NOT NULL and no defaults beyond the
-- primary keys, types "Messages"."Body" as text (as the spec does, so NUL and non-UTF-8 bodies
-- cannot occur in it) and has no secondary indexes. The tests migrate a v1 built from this file
-- too, so the tool is proven against the schema a real v1 owner would hand over, not only ours.

CREATE TABLE "Accounts" (
    "AccountId"   int PRIMARY KEY,
    "Name"        varchar(200),
    "TimeZone"    varchar(64) NULL,
    "IsActive"    boolean,
    "CreatedOn"   timestamp without time zone
);

CREATE TABLE "Users" (
    "UserId"      int PRIMARY KEY,
    "AccountId"   int,
    "Email"       varchar(256),
    "FirstName"   varchar(100) NULL,
    "LastName"    varchar(100) NULL,
    "Role"        smallint,
    "IsDeleted"   boolean,
    "CreatedOn"   timestamp without time zone
);

CREATE TABLE "Lines" (
    "LineId"         int PRIMARY KEY,
    "AccountId"      int,
    "PhoneNumber"    varchar(20),
    "Name"           varchar(100) NULL,
    "Provider"       varchar(20) NULL,
    "ProviderConfig" text NULL,
    "IsDeleted"      boolean,
    "CreatedOn"      timestamp without time zone
);

CREATE TABLE "Contacts" (
    "ContactId"   int PRIMARY KEY,
    "AccountId"   int,
    "PhoneNumber" varchar(20) NULL,
    "FirstName"   varchar,
    "LastName"    varchar,
    "Email"       varchar,
    "IsOptedOut"  boolean,
    "OptedOutOn"  timestamp without time zone NULL,
    "CreatedOn"   timestamp without time zone
);

CREATE TABLE "Conversations" (
    "ConversationId" int PRIMARY KEY,
    "LineId"         int,
    "ContactId"      int,
    "IsClosed"       boolean,
    "AssignedUserId" int NULL,
    "LastMessageOn"  timestamp without time zone NULL,
    "IsDeleted"      boolean,
    "CreatedOn"      timestamp without time zone
);

CREATE TABLE "Blasts" (
    "BlastId"         int PRIMARY KEY,
    "AccountId"       int,
    "LineId"          int,
    "Name"            varchar(200) NULL,
    "Body"            text,
    "CreatedByUserId" int NULL,
    "CreatedOn"       timestamp without time zone,
    "SentOn"          timestamp without time zone NULL
);

CREATE TABLE "Messages" (
    "MessageId"         bigint PRIMARY KEY,
    "ConversationId"    int NULL,
    "LineId"            int,
    "ContactPhone"      varchar(20),
    "Direction"         char(1),
    "Body"              text NULL,
    "Status"            smallint,
    "ProviderMessageId" varchar(100) NULL,
    "ErrorCode"         varchar(20) NULL,
    "SentByUserId"      int NULL,
    "BlastId"           int NULL,
    "CreatedOn"         timestamp without time zone,
    "StatusUpdatedOn"   timestamp without time zone NULL
);

CREATE TABLE "MessageMedia" (
    "MessageMediaId" int PRIMARY KEY,
    "MessageId"      bigint,
    "Url"            varchar(2000),
    "ContentType"    varchar(100) NULL
);
