-- A conversation whose message the agent gave up on after repeated technical failures (its
-- events parked) is handed to the team with the trigger `technical_failure`.
ALTER TABLE escalations DROP CONSTRAINT escalations_trigger_check;
ALTER TABLE escalations ADD CONSTRAINT escalations_trigger_check
    CHECK (trigger IN ('customer', 'tool', 'keyword', 'failures', 'lead_score', 'admin',
                       'technical_failure'));
