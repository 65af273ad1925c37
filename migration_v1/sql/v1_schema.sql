-- The v1 schema (the v1 spec, summarised in docs/migration_v1.md), PostgreSQL dialect, identifiers kept in
-- their original PascalCase and double-quoted. Built on SQL Server originally; differences here:
--   * "Messages"."Body" is bytea, not text: SQL Server's nvarchar(max) holds NUL characters and
--     unpaired surrogates that PostgreSQL text refuses. The bytes are the UTF-8 of the nvarchar value
--     (WTF-8 for unpaired surrogates), so the bad bytes of the real data survive in the copy.
--   * No foreign keys: v1 never declared them, and its data holds broken references.
-- Used by `manage.py v1_seed`, the tests and the benchmark; the migration tool only reads.

CREATE TABLE "Accounts" (
    "AccountId"   integer PRIMARY KEY,
    "Name"        varchar(200) NOT NULL,
    "TimeZone"    varchar(64) NULL,
    "IsActive"    boolean NOT NULL DEFAULT true,
    "CreatedOn"   timestamp without time zone NOT NULL
);

CREATE TABLE "Users" (
    "UserId"      integer PRIMARY KEY,
    "AccountId"   integer NOT NULL,
    "Email"       varchar(256) NOT NULL,
    "FirstName"   varchar(100) NULL,
    "LastName"    varchar(100) NULL,
    "Role"        smallint NOT NULL,
    "IsDeleted"   boolean NOT NULL DEFAULT false,
    "CreatedOn"   timestamp without time zone NOT NULL
);
CREATE INDEX "IX_Users_AccountId" ON "Users" ("AccountId");

CREATE TABLE "Lines" (
    "LineId"         integer PRIMARY KEY,
    "AccountId"      integer NOT NULL,
    "PhoneNumber"    varchar(20) NOT NULL,
    "Name"           varchar(100) NULL,
    "Provider"       varchar(20) NULL,
    "ProviderConfig" text NULL,
    "IsDeleted"      boolean NOT NULL DEFAULT false,
    "CreatedOn"      timestamp without time zone NOT NULL
);
CREATE INDEX "IX_Lines_AccountId" ON "Lines" ("AccountId");

CREATE TABLE "Contacts" (
    "ContactId"   integer PRIMARY KEY,
    "AccountId"   integer NOT NULL,
    "PhoneNumber" varchar(20) NULL,
    "FirstName"   varchar(100) NULL,
    "LastName"    varchar(100) NULL,
    "Email"       varchar(256) NULL,
    "IsOptedOut"  boolean NOT NULL DEFAULT false,
    "OptedOutOn"  timestamp without time zone NULL,
    "CreatedOn"   timestamp without time zone NOT NULL
);
CREATE INDEX "IX_Contacts_AccountId" ON "Contacts" ("AccountId", "ContactId");

CREATE TABLE "Conversations" (
    "ConversationId" integer PRIMARY KEY,
    "LineId"         integer NOT NULL,
    "ContactId"      integer NOT NULL,
    "IsClosed"       boolean NOT NULL DEFAULT false,
    "AssignedUserId" integer NULL,
    "LastMessageOn"  timestamp without time zone NULL,
    "IsDeleted"      boolean NOT NULL DEFAULT false,
    "CreatedOn"      timestamp without time zone NOT NULL
);
CREATE INDEX "IX_Conversations_LineId" ON "Conversations" ("LineId", "ConversationId");

CREATE TABLE "Blasts" (
    "BlastId"         integer PRIMARY KEY,
    "AccountId"       integer NOT NULL,
    "LineId"          integer NOT NULL,
    "Name"            varchar(200) NULL,
    "Body"            text NOT NULL,
    "CreatedByUserId" integer NULL,
    "CreatedOn"       timestamp without time zone NOT NULL,
    "SentOn"          timestamp without time zone NULL
);
CREATE INDEX "IX_Blasts_AccountId" ON "Blasts" ("AccountId");

CREATE TABLE "Messages" (
    "MessageId"         bigint PRIMARY KEY,
    "ConversationId"    integer NULL,
    "LineId"            integer NOT NULL,
    "ContactPhone"      varchar(20) NOT NULL,
    "Direction"         char(1) NOT NULL,
    "Body"              bytea NULL,
    "Status"            smallint NOT NULL,
    "ProviderMessageId" varchar(100) NULL,
    "ErrorCode"         varchar(20) NULL,
    "SentByUserId"      integer NULL,
    "BlastId"           integer NULL,
    "CreatedOn"         timestamp without time zone NOT NULL,
    "StatusUpdatedOn"   timestamp without time zone NULL
);
CREATE INDEX "IX_Messages_LineId" ON "Messages" ("LineId", "MessageId");

CREATE TABLE "MessageMedia" (
    "MessageMediaId" integer PRIMARY KEY,
    "MessageId"      bigint NOT NULL,
    "Url"            varchar(2000) NOT NULL,
    "ContentType"    varchar(100) NULL
);
CREATE INDEX "IX_MessageMedia_MessageId" ON "MessageMedia" ("MessageId");
