"""Partner integrations: NICE CXone chat and RingCentral Team Messaging. See docs/integrations.md."""
