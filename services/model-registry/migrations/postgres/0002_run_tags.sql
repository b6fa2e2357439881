-- Run tags: annotations that may change during a run (params stay fixed).
ALTER TABLE runs ADD COLUMN tags_json TEXT NOT NULL DEFAULT '{}';
