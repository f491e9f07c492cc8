"""initial schema

Revision ID: 57d5ab24fec3
Revises: 
Create Date: 2026-12-07 16:03:53.869949
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openpars.db
from sqlalchemy.dialects import postgresql

revision: str = '57d5ab24fec3'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Append-only audit triggers and row-level security, frozen at this revision.
SQLITE_DDL: tuple[str, ...] = ("CREATE TRIGGER IF NOT EXISTS audit_person_entries_no_update BEFORE UPDATE ON audit_person_entries BEGIN SELECT RAISE(ABORT, 'audit_person_entries is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_person_entries_no_delete BEFORE DELETE ON audit_person_entries BEGIN SELECT RAISE(ABORT, 'audit_person_entries is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_arrest_entries_no_update BEFORE UPDATE ON audit_arrest_entries BEGIN SELECT RAISE(ABORT, 'audit_arrest_entries is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_arrest_entries_no_delete BEFORE DELETE ON audit_arrest_entries BEGIN SELECT RAISE(ABORT, 'audit_arrest_entries is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_user_entries_no_update BEFORE UPDATE ON audit_user_entries BEGIN SELECT RAISE(ABORT, 'audit_user_entries is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_user_entries_no_delete BEFORE DELETE ON audit_user_entries BEGIN SELECT RAISE(ABORT, 'audit_user_entries is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_agency_entries_no_update BEFORE UPDATE ON audit_agency_entries BEGIN SELECT RAISE(ABORT, 'audit_agency_entries is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_agency_entries_no_delete BEFORE DELETE ON audit_agency_entries BEGIN SELECT RAISE(ABORT, 'audit_agency_entries is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_leaves_no_update BEFORE UPDATE ON audit_leaves BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_leaves_no_delete BEFORE DELETE ON audit_leaves BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_nodes_no_update BEFORE UPDATE ON audit_nodes BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_nodes_no_delete BEFORE DELETE ON audit_nodes BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_cosignatures_no_update BEFORE UPDATE ON audit_cosignatures BEGIN SELECT RAISE(ABORT, 'audit_cosignatures is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_cosignatures_no_delete BEFORE DELETE ON audit_cosignatures BEGIN SELECT RAISE(ABORT, 'audit_cosignatures is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused'); END", 'CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries WHEN NOT (OLD.salt IS NOT NULL AND OLD.content IS NOT NULL AND NEW.salt IS NULL AND NEW.content IS NULL AND NEW."id" IS OLD."id" AND NEW."at" IS OLD."at" AND NEW."kind" IS OLD."kind" AND NEW."action" IS OLD."action" AND NEW."outcome" IS OLD."outcome" AND NEW."user_id" IS OLD."user_id" AND NEW."agency_id" IS OLD."agency_id" AND NEW."agreement_id" IS OLD."agreement_id" AND NEW."commitment" IS OLD."commitment" AND NEW."person_ids" IS OLD."person_ids" AND NEW."arrest_ids" IS OLD."arrest_ids" AND EXISTS (SELECT 1 FROM audit_entries s WHERE s.id = (SELECT max(id) FROM audit_entries) AND s.id > OLD.id AND s.action = \'audit.shred\' AND s.outcome = \'ok\' AND s.kind = \'write\' AND s.content IS NOT NULL AND instr(s.content, CAST(\'"\' || lower(hex(OLD.commitment)) || \'"\' AS BLOB)) > 0)) BEGIN SELECT RAISE(ABORT, \'audit_entries is append-only: UPDATE refused (the one change allowed is crypto-shredding: salt and content set to NULL on entries the shredding entry names, nothing else changed)\'); END', "CREATE TRIGGER IF NOT EXISTS agreement_versions_no_update BEFORE UPDATE ON agreement_versions BEGIN SELECT RAISE(ABORT, 'agreement_versions is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_versions_no_delete BEFORE DELETE ON agreement_versions BEGIN SELECT RAISE(ABORT, 'agreement_versions is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_events_no_update BEFORE UPDATE ON agreement_events BEGIN SELECT RAISE(ABORT, 'agreement_events is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_events_no_delete BEFORE DELETE ON agreement_events BEGIN SELECT RAISE(ABORT, 'agreement_events is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_suspensions_no_update BEFORE UPDATE ON agreement_suspensions BEGIN SELECT RAISE(ABORT, 'agreement_suspensions is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_suspensions_no_delete BEFORE DELETE ON agreement_suspensions BEGIN SELECT RAISE(ABORT, 'agreement_suspensions is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_resumptions_no_update BEFORE UPDATE ON agreement_resumptions BEGIN SELECT RAISE(ABORT, 'agreement_resumptions is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS agreement_resumptions_no_delete BEFORE DELETE ON agreement_resumptions BEGIN SELECT RAISE(ABORT, 'agreement_resumptions is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS site_floor_versions_no_update BEFORE UPDATE ON site_floor_versions BEGIN SELECT RAISE(ABORT, 'site_floor_versions is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS site_floor_versions_no_delete BEFORE DELETE ON site_floor_versions BEGIN SELECT RAISE(ABORT, 'site_floor_versions is append-only: DELETE refused'); END", 'INSERT OR IGNORE INTO governance_generation (id, generation, token) VALUES (1, 1, randomblob(16))', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreements_insert AFTER INSERT ON agreements FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreements_update AFTER UPDATE ON agreements FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreements_delete AFTER DELETE ON agreements FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_versions_insert AFTER INSERT ON agreement_versions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_versions_update AFTER UPDATE ON agreement_versions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_versions_delete AFTER DELETE ON agreement_versions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_suspensions_insert AFTER INSERT ON agreement_suspensions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_suspensions_update AFTER UPDATE ON agreement_suspensions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_suspensions_delete AFTER DELETE ON agreement_suspensions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_resumptions_insert AFTER INSERT ON agreement_resumptions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_resumptions_update AFTER UPDATE ON agreement_resumptions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_agreement_resumptions_delete AFTER DELETE ON agreement_resumptions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_site_floor_versions_insert AFTER INSERT ON site_floor_versions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_site_floor_versions_update AFTER UPDATE ON site_floor_versions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', 'CREATE TRIGGER IF NOT EXISTS governance_generation_site_floor_versions_delete AFTER DELETE ON site_floor_versions FOR EACH ROW BEGIN UPDATE governance_generation SET generation = generation + 1, token = randomblob(16) WHERE id = 1; END', "CREATE TRIGGER IF NOT EXISTS governance_generation_only_up BEFORE UPDATE ON governance_generation WHEN NEW.generation IS NULL OR NEW.generation <= OLD.generation OR NEW.id IS NOT OLD.id BEGIN SELECT RAISE(ABORT, 'governance_generation only goes up and is never deleted (agreements/models.py): UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_generation_no_delete BEFORE DELETE ON governance_generation BEGIN SELECT RAISE(ABORT, 'governance_generation only goes up and is never deleted (agreements/models.py): DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_votes_no_update BEFORE UPDATE ON governance_votes BEGIN SELECT RAISE(ABORT, 'governance_votes is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_votes_no_delete BEFORE DELETE ON governance_votes BEGIN SELECT RAISE(ABORT, 'governance_votes is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_board_configs_no_update BEFORE UPDATE ON governance_board_configs BEGIN SELECT RAISE(ABORT, 'governance_board_configs is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_board_configs_no_delete BEFORE DELETE ON governance_board_configs BEGIN SELECT RAISE(ABORT, 'governance_board_configs is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_key_notices_no_update BEFORE UPDATE ON governance_key_notices BEGIN SELECT RAISE(ABORT, 'governance_key_notices is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_key_notices_no_delete BEFORE DELETE ON governance_key_notices BEGIN SELECT RAISE(ABORT, 'governance_key_notices is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposal_reports_no_update BEFORE UPDATE ON governance_proposal_reports BEGIN SELECT RAISE(ABORT, 'governance_proposal_reports is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposal_reports_no_delete BEFORE DELETE ON governance_proposal_reports BEGIN SELECT RAISE(ABORT, 'governance_proposal_reports is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposal_replays_no_update BEFORE UPDATE ON governance_proposal_replays BEGIN SELECT RAISE(ABORT, 'governance_proposal_replays is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposal_replays_no_delete BEFORE DELETE ON governance_proposal_replays BEGIN SELECT RAISE(ABORT, 'governance_proposal_replays is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposal_replay_queries_no_update BEFORE UPDATE ON governance_proposal_replay_queries BEGIN SELECT RAISE(ABORT, 'governance_proposal_replay_queries is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposal_replay_queries_no_delete BEFORE DELETE ON governance_proposal_replay_queries BEGIN SELECT RAISE(ABORT, 'governance_proposal_replay_queries is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposals_no_delete BEFORE DELETE ON governance_proposals BEGIN SELECT RAISE(ABORT, 'governance_proposals is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS governance_proposals_guard_update BEFORE UPDATE ON governance_proposals WHEN (NEW.id IS NOT OLD.id OR NEW.agreement_id IS NOT OLD.agreement_id OR NEW.agreement_version IS NOT OLD.agreement_version OR NEW.content_hash IS NOT OLD.content_hash OR NEW.floor_content IS NOT OLD.floor_content OR NEW.floor_base_hash IS NOT OLD.floor_base_hash OR NEW.action IS NOT OLD.action OR NEW.summary IS NOT OLD.summary OR NEW.new_expires_at IS NOT OLD.new_expires_at OR NEW.effective_at IS NOT OLD.effective_at OR NEW.deadline IS NOT OLD.deadline OR NEW.board_config_id IS NOT OLD.board_config_id OR NEW.opened_at IS NOT OLD.opened_at OR NEW.opened_by IS NOT OLD.opened_by OR NEW.opened_by_user_id IS NOT OLD.opened_by_user_id) OR OLD.status NOT IN ('open', 'approved') OR NEW.status = OLD.status OR NEW.status = 'open' OR (OLD.status = 'approved' AND (NEW.decided_at IS NOT OLD.decided_at OR NEW.effective_instant IS NOT OLD.effective_instant OR NEW.final_tally IS NOT OLD.final_tally)) BEGIN SELECT RAISE(ABORT, 'governance_proposals is append-only: only a status transition from open or approved is allowed'); END", 'CREATE TRIGGER IF NOT EXISTS visibility_involvement_insert AFTER INSERT ON involvements FOR EACH ROW BEGIN INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT NEW.person_id AS person_id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_involvement_update AFTER UPDATE ON involvements FOR EACH ROW BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT OLD.person_id AS person_id UNION SELECT NEW.person_id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT OLD.person_id AS person_id UNION SELECT NEW.person_id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_involvement_delete AFTER DELETE ON involvements FOR EACH ROW BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT OLD.person_id AS person_id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT OLD.person_id AS person_id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_arrest_update AFTER UPDATE OF state, sealed_at, expunged_at ON arrests FOR EACH ROW WHEN OLD.state IS NOT NEW.state OR OLD.sealed_at IS NOT NEW.sealed_at OR OLD.expunged_at IS NOT NEW.expunged_at BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT person_id FROM involvements WHERE arrest_id = NEW.id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT person_id FROM involvements WHERE arrest_id = NEW.id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_charge_insert AFTER INSERT ON charges FOR EACH ROW BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT person_id FROM involvements WHERE arrest_id = NEW.arrest_id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT person_id FROM involvements WHERE arrest_id = NEW.arrest_id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_charge_update AFTER UPDATE ON charges FOR EACH ROW BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT person_id FROM involvements WHERE arrest_id = OLD.arrest_id UNION SELECT person_id FROM involvements WHERE arrest_id = NEW.arrest_id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT person_id FROM involvements WHERE arrest_id = OLD.arrest_id UNION SELECT person_id FROM involvements WHERE arrest_id = NEW.arrest_id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_charge_delete AFTER DELETE ON charges FOR EACH ROW BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT person_id FROM involvements WHERE arrest_id = OLD.arrest_id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT person_id FROM involvements WHERE arrest_id = OLD.arrest_id); END', 'CREATE TRIGGER IF NOT EXISTS visibility_person_update AFTER UPDATE ON persons FOR EACH ROW BEGIN DELETE FROM visible_persons WHERE person_id IN (SELECT NEW.id AS person_id); INSERT OR IGNORE INTO visibility_pending (person_id) SELECT person_id FROM (SELECT NEW.id AS person_id); END', "CREATE TRIGGER IF NOT EXISTS audit_entries_canary AFTER INSERT ON audit_entries FOR EACH ROW WHEN NEW.agreement_id IS NOT NULL AND NEW.outcome = 'ok' AND ((NEW.person_ids IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(NEW.person_ids) s WHERE s.value IN (SELECT person_id FROM oversight_canaries))) OR (NEW.arrest_ids IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(NEW.arrest_ids) s WHERE s.value IN (SELECT arrest_id FROM oversight_canaries)))) BEGIN INSERT OR IGNORE INTO oversight_flags (detector, dedupe_key, rule, threshold, subject_user_id, subject_agency_id, subject_agreement_id, raised_at) SELECT 'canary', 'entry:' || e.id, 'an external read returned a canary record: a synthetic person no legitimate query can reach (any one access fires)', 1.0, e.user_id, e.agency_id, e.agreement_id, e.at FROM audit_entries e WHERE e.id = NEW.id; INSERT OR IGNORE INTO oversight_flag_entries (flag_id, entry_id) SELECT id, NEW.id FROM oversight_flags WHERE detector = 'canary' AND dedupe_key = 'entry:' || NEW.id; END", "CREATE TRIGGER IF NOT EXISTS oversight_case_events_no_update BEFORE UPDATE ON oversight_case_events BEGIN SELECT RAISE(ABORT, 'oversight_case_events is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS oversight_case_events_no_delete BEFORE DELETE ON oversight_case_events BEGIN SELECT RAISE(ABORT, 'oversight_case_events is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS oversight_flag_entries_no_update BEFORE UPDATE ON oversight_flag_entries BEGIN SELECT RAISE(ABORT, 'oversight_flag_entries is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS oversight_transparency_releases_no_update BEFORE UPDATE ON oversight_transparency_releases BEGIN SELECT RAISE(ABORT, 'oversight_transparency_releases is append-only: UPDATE refused'); END", "CREATE TRIGGER IF NOT EXISTS oversight_transparency_releases_no_delete BEFORE DELETE ON oversight_transparency_releases BEGIN SELECT RAISE(ABORT, 'oversight_transparency_releases is append-only: DELETE refused'); END", "CREATE TRIGGER IF NOT EXISTS oversight_flag_entries_refs BEFORE INSERT ON oversight_flag_entries WHEN NOT EXISTS (SELECT 1 FROM oversight_flags f WHERE f.id = NEW.flag_id) OR NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.id = NEW.entry_id) BEGIN SELECT RAISE(ABORT, 'oversight_flag_entries: a link names no such flag or audit entry'); END", "CREATE TRIGGER IF NOT EXISTS oversight_flags_linked BEFORE DELETE ON oversight_flags WHEN EXISTS (SELECT 1 FROM oversight_flag_entries l WHERE l.flag_id = OLD.id) BEGIN SELECT RAISE(ABORT, 'oversight_flags: a flag with linked entries cannot be deleted'); END")
POSTGRESQL_DDL: tuple[str, ...] = ('ALTER TABLE persons ALTER COLUMN name_key SET STATISTICS 1000', 'ALTER TABLE person_aliases ALTER COLUMN name_key SET STATISTICS 1000', "CREATE OR REPLACE FUNCTION openpars_refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$", 'CREATE OR REPLACE TRIGGER audit_person_entries_append_only BEFORE UPDATE OR DELETE ON audit_person_entries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_arrest_entries_append_only BEFORE UPDATE OR DELETE ON audit_arrest_entries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_user_entries_append_only BEFORE UPDATE OR DELETE ON audit_user_entries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_agency_entries_append_only BEFORE UPDATE OR DELETE ON audit_agency_entries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE ON audit_leaves FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_cosignatures_append_only BEFORE UPDATE OR DELETE ON audit_cosignatures FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', 'CREATE OR REPLACE TRIGGER audit_entries_append_only BEFORE DELETE ON audit_entries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_audit_change()', "CREATE OR REPLACE FUNCTION openpars_guard_audit_shredding() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE shredding bigint; named jsonb; BEGIN IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF; SELECT s.id, convert_from(s.content, 'UTF8')::jsonb -> 'params' -> 'commitments' INTO shredding, named FROM audit_entries s WHERE s.id = nullif(current_setting('openpars.shredding_entry', true), '')::bigint AND s.action = 'audit.shred' AND s.outcome = 'ok' AND s.kind = 'write' AND s.content IS NOT NULL; IF shredding IS NULL OR jsonb_typeof(named) IS DISTINCT FROM 'array' OR (SELECT count(*) FROM old_rows) <> (SELECT count(*) FROM old_rows o JOIN new_rows n ON n.id = o.id) OR EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.salt IS NULL OR o.content IS NULL OR n.salt IS NOT NULL OR n.content IS NOT NULL OR o.id >= shredding OR to_jsonb(o) - 'salt' - 'content' IS DISTINCT FROM to_jsonb(n) - 'salt' - 'content') OR EXISTS (SELECT 1 FROM old_rows o WHERE encode(o.commitment, 'hex') NOT IN (SELECT jsonb_array_elements_text(named))) THEN RAISE EXCEPTION USING MESSAGE = 'audit_entries is append-only: UPDATE refused (the one change allowed is crypto-shredding: salt and content set to NULL on entries the shredding entry names, nothing else changed)'; END IF; RETURN NULL; END $$", 'CREATE OR REPLACE TRIGGER audit_entries_shredding_only AFTER UPDATE ON audit_entries REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_guard_audit_shredding()', 'CREATE OR REPLACE FUNCTION openpars_enqueue_audit_entries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit_pending (entry_id) SELECT id FROM new_entries; RETURN NULL; END $$', 'CREATE OR REPLACE TRIGGER audit_entries_enqueue AFTER INSERT ON audit_entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION openpars_enqueue_audit_entries()', 'CREATE INDEX IF NOT EXISTS ix_audit_entries_shredded ON audit_entries (id) WHERE content IS NULL', "CREATE OR REPLACE FUNCTION openpars_refuse_agreement_history_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$", 'CREATE OR REPLACE TRIGGER agreement_versions_append_only BEFORE UPDATE OR DELETE ON agreement_versions FOR EACH ROW EXECUTE FUNCTION openpars_refuse_agreement_history_change()', 'CREATE OR REPLACE TRIGGER agreement_events_append_only BEFORE UPDATE OR DELETE ON agreement_events FOR EACH ROW EXECUTE FUNCTION openpars_refuse_agreement_history_change()', 'CREATE OR REPLACE TRIGGER agreement_suspensions_append_only BEFORE UPDATE OR DELETE ON agreement_suspensions FOR EACH ROW EXECUTE FUNCTION openpars_refuse_agreement_history_change()', 'CREATE OR REPLACE TRIGGER agreement_resumptions_append_only BEFORE UPDATE OR DELETE ON agreement_resumptions FOR EACH ROW EXECUTE FUNCTION openpars_refuse_agreement_history_change()', 'CREATE OR REPLACE TRIGGER site_floor_versions_append_only BEFORE UPDATE OR DELETE ON site_floor_versions FOR EACH ROW EXECUTE FUNCTION openpars_refuse_agreement_history_change()', 'INSERT INTO governance_generation (id, generation, token) VALUES (1, 1, uuid_send(gen_random_uuid())) ON CONFLICT DO NOTHING', 'CREATE OR REPLACE FUNCTION openpars_governance_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE governance_generation SET generation = generation + 1, token = uuid_send(gen_random_uuid()) WHERE id = 1; RETURN NULL; END $$', "CREATE OR REPLACE FUNCTION openpars_governance_generation_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = 'governance_generation only goes up and is never deleted (agreements/models.py): ' || TG_OP || ' refused'; END $$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_governance_changed() SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_governance_generation_guard() SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", 'CREATE OR REPLACE TRIGGER governance_generation_agreements BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON agreements FOR EACH STATEMENT EXECUTE FUNCTION openpars_governance_changed()', 'CREATE OR REPLACE TRIGGER governance_generation_agreement_versions BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON agreement_versions FOR EACH STATEMENT EXECUTE FUNCTION openpars_governance_changed()', 'CREATE OR REPLACE TRIGGER governance_generation_agreement_suspensions BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON agreement_suspensions FOR EACH STATEMENT EXECUTE FUNCTION openpars_governance_changed()', 'CREATE OR REPLACE TRIGGER governance_generation_agreement_resumptions BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON agreement_resumptions FOR EACH STATEMENT EXECUTE FUNCTION openpars_governance_changed()', 'CREATE OR REPLACE TRIGGER governance_generation_site_floor_versions BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON site_floor_versions FOR EACH STATEMENT EXECUTE FUNCTION openpars_governance_changed()', 'CREATE OR REPLACE TRIGGER governance_generation_only_up BEFORE UPDATE ON governance_generation FOR EACH ROW WHEN (NEW.generation IS NULL OR NEW.generation <= OLD.generation OR NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION openpars_governance_generation_guard()', 'CREATE OR REPLACE TRIGGER governance_generation_no_delete BEFORE DELETE OR TRUNCATE ON governance_generation FOR EACH STATEMENT EXECUTE FUNCTION openpars_governance_generation_guard()', "CREATE OR REPLACE FUNCTION openpars_refuse_governance_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$", 'CREATE OR REPLACE TRIGGER governance_votes_append_only BEFORE UPDATE OR DELETE ON governance_votes FOR EACH ROW EXECUTE FUNCTION openpars_refuse_governance_change()', 'CREATE OR REPLACE TRIGGER governance_board_configs_append_only BEFORE UPDATE OR DELETE ON governance_board_configs FOR EACH ROW EXECUTE FUNCTION openpars_refuse_governance_change()', 'CREATE OR REPLACE TRIGGER governance_key_notices_append_only BEFORE UPDATE OR DELETE ON governance_key_notices FOR EACH ROW EXECUTE FUNCTION openpars_refuse_governance_change()', 'CREATE OR REPLACE TRIGGER governance_proposal_reports_append_only BEFORE UPDATE OR DELETE ON governance_proposal_reports FOR EACH ROW EXECUTE FUNCTION openpars_refuse_governance_change()', 'CREATE OR REPLACE TRIGGER governance_proposal_replays_append_only BEFORE UPDATE OR DELETE ON governance_proposal_replays FOR EACH ROW EXECUTE FUNCTION openpars_refuse_governance_change()', 'CREATE OR REPLACE TRIGGER governance_proposal_replay_queries_append_only BEFORE UPDATE OR DELETE ON governance_proposal_replay_queries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_governance_change()', "CREATE OR REPLACE FUNCTION openpars_refuse_proposal_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$", 'CREATE OR REPLACE TRIGGER governance_proposals_append_only BEFORE DELETE ON governance_proposals FOR EACH ROW EXECUTE FUNCTION openpars_refuse_proposal_delete()', "CREATE OR REPLACE FUNCTION openpars_guard_proposal_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF (NEW.id IS DISTINCT FROM OLD.id OR NEW.agreement_id IS DISTINCT FROM OLD.agreement_id OR NEW.agreement_version IS DISTINCT FROM OLD.agreement_version OR NEW.content_hash IS DISTINCT FROM OLD.content_hash OR NEW.floor_content IS DISTINCT FROM OLD.floor_content OR NEW.floor_base_hash IS DISTINCT FROM OLD.floor_base_hash OR NEW.action IS DISTINCT FROM OLD.action OR NEW.summary IS DISTINCT FROM OLD.summary OR NEW.new_expires_at IS DISTINCT FROM OLD.new_expires_at OR NEW.effective_at IS DISTINCT FROM OLD.effective_at OR NEW.deadline IS DISTINCT FROM OLD.deadline OR NEW.board_config_id IS DISTINCT FROM OLD.board_config_id OR NEW.opened_at IS DISTINCT FROM OLD.opened_at OR NEW.opened_by IS DISTINCT FROM OLD.opened_by OR NEW.opened_by_user_id IS DISTINCT FROM OLD.opened_by_user_id) OR OLD.status NOT IN ('open', 'approved') OR NEW.status = OLD.status OR NEW.status = 'open' OR (OLD.status = 'approved' AND (NEW.decided_at IS DISTINCT FROM OLD.decided_at OR NEW.effective_instant IS DISTINCT FROM OLD.effective_instant OR NEW.final_tally IS DISTINCT FROM OLD.final_tally)) THEN RAISE EXCEPTION USING MESSAGE = 'governance_proposals is append-only: only a status transition from open or approved is allowed'; END IF; RETURN NEW; END $$", 'CREATE OR REPLACE TRIGGER governance_proposals_guard_update BEFORE UPDATE ON governance_proposals FOR EACH ROW EXECUTE FUNCTION openpars_guard_proposal_update()', 'CREATE UNIQUE INDEX IF NOT EXISTS ux_rate_slots_place ON rate_slots (kind, owner_id, slot)', "CREATE OR REPLACE FUNCTION openpars_visibility_changed() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE ids integer[]; remove boolean := TG_OP <> 'INSERT' OR TG_TABLE_NAME = 'charges'; BEGIN IF TG_TABLE_NAME = 'involvements' THEN IF TG_OP = 'INSERT' THEN PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE; END IF; IF TG_OP = 'INSERT' THEN SELECT array_agg(DISTINCT person_id) INTO ids FROM new_rows; ELSIF TG_OP = 'UPDATE' THEN SELECT array_agg(DISTINCT p) INTO ids FROM ( SELECT person_id AS p FROM old_rows UNION SELECT person_id FROM new_rows) AS c; ELSE SELECT array_agg(DISTINCT person_id) INTO ids FROM old_rows; END IF; ELSIF TG_TABLE_NAME = 'charges' THEN IF TG_OP = 'INSERT' THEN PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE; SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i WHERE i.arrest_id IN (SELECT arrest_id FROM new_rows); ELSIF TG_OP = 'UPDATE' THEN PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE; SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i WHERE i.arrest_id IN (SELECT arrest_id FROM old_rows UNION SELECT arrest_id FROM new_rows); ELSE SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i WHERE i.arrest_id IN (SELECT arrest_id FROM old_rows); END IF; ELSIF TG_TABLE_NAME = 'arrests' THEN SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i JOIN new_rows n ON n.id = i.arrest_id JOIN old_rows o ON o.id = n.id WHERE o.state IS DISTINCT FROM n.state OR o.sealed_at IS DISTINCT FROM n.sealed_at OR o.expunged_at IS DISTINCT FROM n.expunged_at; ELSE /* A person whose only change is floor_visible (kept by access.rls's triggers) changes in no set: no set row copies it. */ SELECT array_agg(n.id) INTO ids FROM new_rows n WHERE NOT EXISTS ( SELECT 1 FROM old_rows o WHERE o.id = n.id AND o.floor_visible IS DISTINCT FROM n.floor_visible AND to_jsonb(o) - 'floor_visible' = to_jsonb(n) - 'floor_visible'); END IF; IF ids IS NULL THEN RETURN NULL; END IF; PERFORM 1 FROM persons WHERE id = ANY(ids) ORDER BY id FOR UPDATE; IF remove THEN DELETE FROM visible_persons WHERE person_id = ANY(ids); END IF; INSERT INTO visibility_pending (person_id) SELECT unnest(ids) ON CONFLICT DO NOTHING; RETURN NULL; END $$", 'CREATE OR REPLACE TRIGGER visibility_involvements_insert AFTER INSERT ON involvements REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_involvements_update AFTER UPDATE ON involvements REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_involvements_delete AFTER DELETE ON involvements REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_charges_insert AFTER INSERT ON charges REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_charges_update AFTER UPDATE ON charges REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_charges_delete AFTER DELETE ON charges REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_arrests_update AFTER UPDATE ON arrests REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'CREATE OR REPLACE TRIGGER visibility_persons_update AFTER UPDATE ON persons REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_visibility_changed()', 'ALTER TABLE visible_persons ALTER COLUMN name_key SET STATISTICS 1000', "CREATE OR REPLACE FUNCTION openpars_canary_trip() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN IF NEW.content IS NULL THEN RAISE EXCEPTION USING MESSAGE = 'an external read''s audit entry was written without its content; the canary check needs both'; END IF; IF NOT EXISTS (SELECT 1 FROM oversight_canaries c WHERE c.person_id = ANY (NEW.person_ids) OR c.arrest_id = ANY (NEW.arrest_ids)) THEN RETURN NULL; END IF; INSERT INTO oversight_flags (detector, dedupe_key, rule, threshold, subject_user_id, subject_agency_id, subject_agreement_id, raised_at) SELECT 'canary', 'entry:' || e.id, 'an external read returned a canary record: a synthetic person no legitimate query can reach (any one access fires)', 1.0, e.user_id, e.agency_id, e.agreement_id, e.at FROM audit_entries e WHERE e.id = NEW.id ON CONFLICT (detector, dedupe_key) DO NOTHING; INSERT INTO oversight_flag_entries (flag_id, entry_id) SELECT f.id, NEW.id FROM oversight_flags f WHERE f.detector = 'canary' AND f.dedupe_key = 'entry:' || NEW.id ON CONFLICT DO NOTHING; RETURN NULL; END $$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_canary_trip() SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", 'REVOKE ALL ON FUNCTION openpars_canary_trip() FROM PUBLIC', "CREATE OR REPLACE TRIGGER audit_entries_canary AFTER INSERT ON audit_entries FOR EACH ROW WHEN (NEW.agreement_id IS NOT NULL AND NEW.outcome = 'ok') EXECUTE FUNCTION openpars_canary_trip()", "CREATE OR REPLACE FUNCTION openpars_refuse_oversight_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused'; END $$", 'CREATE OR REPLACE TRIGGER oversight_case_events_append_only BEFORE UPDATE OR DELETE ON oversight_case_events FOR EACH ROW EXECUTE FUNCTION openpars_refuse_oversight_change()', 'CREATE OR REPLACE TRIGGER oversight_flag_entries_append_only BEFORE UPDATE ON oversight_flag_entries FOR EACH ROW EXECUTE FUNCTION openpars_refuse_oversight_change()', 'CREATE OR REPLACE TRIGGER oversight_transparency_releases_append_only BEFORE UPDATE OR DELETE ON oversight_transparency_releases FOR EACH ROW EXECUTE FUNCTION openpars_refuse_oversight_change()', "CREATE OR REPLACE FUNCTION openpars_flag_links_refs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM new_links n WHERE NOT EXISTS (SELECT 1 FROM oversight_flags f WHERE f.id = n.flag_id) OR NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.id = n.entry_id)) THEN RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', MESSAGE = 'oversight_flag_entries: a link names no such flag or audit entry'; END IF; RETURN NULL; END $$", 'CREATE OR REPLACE TRIGGER oversight_flag_entries_refs AFTER INSERT ON oversight_flag_entries REFERENCING NEW TABLE AS new_links FOR EACH STATEMENT EXECUTE FUNCTION openpars_flag_links_refs()', "CREATE OR REPLACE FUNCTION openpars_flags_linked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM old_flags o JOIN oversight_flag_entries l ON l.flag_id = o.id) THEN RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', MESSAGE = 'oversight_flags: a flag with linked entries cannot be deleted'; END IF; RETURN NULL; END $$", 'CREATE OR REPLACE TRIGGER oversight_flags_linked AFTER DELETE ON oversight_flags REFERENCING OLD TABLE AS old_flags FOR EACH STATEMENT EXECUTE FUNCTION openpars_flags_linked()', "CREATE OR REPLACE FUNCTION openpars_external_role() RETURNS name LANGUAGE sql STABLE RETURN (left(current_database(), 54) || '_external')::name", "DO $do$ DECLARE r name := openpars_external_role(); BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN BEGIN EXECUTE 'CREATE ROLE ' || quote_ident(r) || ' LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; WHEN insufficient_privilege THEN RAISE EXCEPTION USING MESSAGE = 'openpars reads for external agencies as the database role ' || quote_ident(r) || ', which does not exist, and ' || quote_ident(current_user) || ' may not create roles; ask the DBA to run CREATE ROLE ' || quote_ident(r) || ' LOGIN, then run openpars db upgrade again (docs/deployment.md)'; END; END IF; IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND (rolsuper OR rolbypassrls)) THEN RAISE EXCEPTION USING MESSAGE = 'the database role ' || quote_ident(r) || ' is a superuser or bypasses row-level security, so the floor would not bind external reads; run ALTER ROLE ' || quote_ident(r) || ' NOSUPERUSER NOBYPASSRLS'; END IF; END $do$", 'CREATE OR REPLACE FUNCTION openpars_share_lock_agreements(grantee integer) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$ DECLARE locked bigint; BEGIN PERFORM 1 FROM agreements WHERE grantee_agency_id = grantee FOR SHARE; GET DIAGNOSTICS locked = ROW_COUNT; RETURN locked; END $$', "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_share_lock_agreements(integer) SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", 'REVOKE ALL ON FUNCTION openpars_share_lock_agreements(integer) FROM PUBLIC', "CREATE OR REPLACE FUNCTION openpars_share_lock_generation(grantee integer) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$ DECLARE found text; BEGIN PERFORM openpars_share_lock_agreements(grantee); SELECT generation::text || ' ' || encode(token, 'hex') INTO found FROM governance_generation WHERE id = 1; RETURN found; END $$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_share_lock_generation(integer) SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", 'REVOKE ALL ON FUNCTION openpars_share_lock_generation(integer) FROM PUBLIC', 'CREATE OR REPLACE FUNCTION openpars_floor_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE ids integer[]; everyone boolean := TG_TABLE_NAME = \'site_floor_versions\' OR TG_OP = \'TRUNCATE\'; floor_in_force jsonb; forbidden text[]; juveniles boolean; BEGIN IF everyone THEN LOCK TABLE involvements, arrests IN SHARE MODE; ELSIF TG_TABLE_NAME = \'involvements\' THEN IF TG_OP <> \'DELETE\' THEN PERFORM 1 FROM arrests WHERE id IN (SELECT arrest_id FROM new_rows) ORDER BY id FOR SHARE; END IF; IF TG_OP = \'INSERT\' THEN SELECT array_agg(DISTINCT person_id) INTO ids FROM new_rows; ELSIF TG_OP = \'UPDATE\' THEN SELECT array_agg(DISTINCT p) INTO ids FROM ( SELECT person_id AS p FROM old_rows UNION SELECT person_id FROM new_rows) AS c; ELSE SELECT array_agg(DISTINCT person_id) INTO ids FROM old_rows; END IF; ELSE SELECT array_agg(DISTINCT i.person_id) INTO ids FROM involvements i WHERE i.arrest_id IN ( SELECT n.id FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id WHERE o.id IS NULL OR o.sealed_at IS DISTINCT FROM n.sealed_at OR o.expunged_at IS DISTINCT FROM n.expunged_at); END IF; IF NOT everyone THEN IF ids IS NULL THEN RETURN NULL; END IF; PERFORM 1 FROM persons WHERE id = ANY(ids) ORDER BY id FOR UPDATE; END IF; floor_in_force := (\'{"forbidden_roles": ["affiant", "complainant", "victim", "witness"], "forbid_juveniles": true}\'::jsonb || coalesce((SELECT content FROM site_floor_versions ORDER BY version DESC LIMIT 1), \'{}\'::jsonb)); forbidden := ARRAY(SELECT jsonb_array_elements_text(floor_in_force -> \'forbidden_roles\')); juveniles := coalesce(floor_in_force -> \'forbid_juveniles\' = \'false\'::jsonb, false); IF everyone THEN SELECT array_agg(q.id) INTO ids FROM persons q WHERE q.floor_visible IS DISTINCT FROM EXISTS (SELECT 1 FROM involvements i JOIN arrests a ON a.id = i.arrest_id WHERE i.person_id = q.id AND i.role::text <> ALL (forbidden) AND (i.juvenile IS FALSE OR juveniles) AND a.sealed_at IS NULL AND a.expunged_at IS NULL); IF ids IS NULL THEN RETURN NULL; END IF; PERFORM 1 FROM persons WHERE id = ANY(ids) ORDER BY id FOR UPDATE; END IF; UPDATE persons p SET floor_visible = c.visible FROM (SELECT q.id, EXISTS (SELECT 1 FROM involvements i JOIN arrests a ON a.id = i.arrest_id WHERE i.person_id = q.id AND i.role::text <> ALL (forbidden) AND (i.juvenile IS FALSE OR juveniles) AND a.sealed_at IS NULL AND a.expunged_at IS NULL) AS visible FROM persons q WHERE q.id = ANY(ids)) c WHERE p.id = c.id AND p.floor_visible IS DISTINCT FROM c.visible; UPDATE visible_persons v SET floor_visible = p.floor_visible FROM persons p WHERE v.person_id = ANY(ids) AND p.id = v.person_id AND v.floor_visible IS DISTINCT FROM p.floor_visible; RETURN NULL; END $$', "CREATE OR REPLACE FUNCTION openpars_floor_column_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF pg_trigger_depth() > 1 THEN RETURN NULL; END IF; IF TG_OP = 'INSERT' THEN IF EXISTS (SELECT 1 FROM new_rows WHERE floor_visible) THEN RAISE EXCEPTION USING MESSAGE = 'persons.floor_visible is kept by the database ' || '(access/rls.py): insert a person without it'; END IF; ELSIF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id WHERE n.floor_visible IS DISTINCT FROM coalesce(o.floor_visible, false)) THEN RAISE EXCEPTION USING MESSAGE = 'persons.floor_visible is kept by the database ' || '(access/rls.py) from the involvements, arrests and site floor; it cannot be set'; END IF; RETURN NULL; END $$", "CREATE OR REPLACE FUNCTION openpars_set_floor_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM new_rows n JOIN persons p ON p.id = n.person_id WHERE n.floor_visible IS DISTINCT FROM p.floor_visible) THEN RAISE EXCEPTION USING MESSAGE = 'visible_persons.floor_visible is its person''s ' || 'persons.floor_visible (access/rls.py): copy it from the person'; END IF; RETURN NULL; END $$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_floor_rows_changed() SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_floor_column_guard() SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION openpars_set_floor_guard() SET search_path = ' || quote_ident(current_schema()) || ', pg_temp'; END $do$", 'ALTER FUNCTION openpars_floor_rows_changed() SET plan_cache_mode = force_generic_plan', 'CREATE OR REPLACE TRIGGER floor_site_floor_versions_insert AFTER INSERT ON site_floor_versions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_site_floor_versions_truncate AFTER TRUNCATE ON site_floor_versions FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_involvements_insert AFTER INSERT ON involvements REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_involvements_update AFTER UPDATE ON involvements REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_involvements_delete AFTER DELETE ON involvements REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_involvements_truncate AFTER TRUNCATE ON involvements FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_arrests_update AFTER UPDATE ON arrests REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_arrests_truncate AFTER TRUNCATE ON arrests FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_rows_changed()', 'CREATE OR REPLACE TRIGGER floor_persons_insert AFTER INSERT ON persons REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_column_guard()', 'CREATE OR REPLACE TRIGGER floor_persons_update AFTER UPDATE ON persons REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_floor_column_guard()', 'CREATE OR REPLACE TRIGGER floor_visible_persons_insert AFTER INSERT ON visible_persons REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_set_floor_guard()', 'CREATE OR REPLACE TRIGGER floor_visible_persons_update AFTER UPDATE ON visible_persons REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION openpars_set_floor_guard()', 'ALTER TABLE arrests ENABLE ROW LEVEL SECURITY', 'ALTER TABLE arrests FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS arrests_base ON arrests', 'CREATE POLICY arrests_base ON arrests USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS arrests_floor ON arrests', 'ALTER TABLE involvements ENABLE ROW LEVEL SECURITY', 'ALTER TABLE involvements FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS involvements_base ON involvements', 'CREATE POLICY involvements_base ON involvements USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS involvements_floor ON involvements', 'ALTER TABLE persons ENABLE ROW LEVEL SECURITY', 'ALTER TABLE persons FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS persons_base ON persons', 'CREATE POLICY persons_base ON persons USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS persons_floor ON persons', 'ALTER TABLE person_aliases ENABLE ROW LEVEL SECURITY', 'ALTER TABLE person_aliases FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS person_aliases_base ON person_aliases', 'CREATE POLICY person_aliases_base ON person_aliases USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS person_aliases_floor ON person_aliases', 'ALTER TABLE visible_persons ENABLE ROW LEVEL SECURITY', 'ALTER TABLE visible_persons FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS visible_persons_base ON visible_persons', 'CREATE POLICY visible_persons_base ON visible_persons USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS visible_persons_floor ON visible_persons', 'ALTER TABLE charges ENABLE ROW LEVEL SECURITY', 'ALTER TABLE charges FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS charges_base ON charges', 'CREATE POLICY charges_base ON charges USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS charges_floor ON charges', 'ALTER TABLE charging_decisions ENABLE ROW LEVEL SECURITY', 'ALTER TABLE charging_decisions FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS charging_decisions_base ON charging_decisions', 'CREATE POLICY charging_decisions_base ON charging_decisions USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS charging_decisions_floor ON charging_decisions', 'ALTER TABLE bail_recommendations ENABLE ROW LEVEL SECURITY', 'ALTER TABLE bail_recommendations FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS bail_recommendations_base ON bail_recommendations', 'CREATE POLICY bail_recommendations_base ON bail_recommendations USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS bail_recommendations_floor ON bail_recommendations', 'ALTER TABLE arraignments ENABLE ROW LEVEL SECURITY', 'ALTER TABLE arraignments FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS arraignments_base ON arraignments', 'CREATE POLICY arraignments_base ON arraignments USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS arraignments_floor ON arraignments', 'ALTER TABLE custody_events ENABLE ROW LEVEL SECURITY', 'ALTER TABLE custody_events FORCE ROW LEVEL SECURITY', 'DROP POLICY IF EXISTS custody_events_base ON custody_events', 'CREATE POLICY custody_events_base ON custody_events USING (true) WITH CHECK (true)', 'DROP POLICY IF EXISTS custody_events_floor ON custody_events', 'DO $do$ DECLARE r name := openpars_external_role(); BEGIN EXECUTE replace(replace(\'CREATE POLICY arrests_floor ON arrests AS RESTRICTIVE FOR SELECT TO @external_role@ USING (sealed_at IS NULL AND expunged_at IS NULL)\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY involvements_floor ON involvements AS RESTRICTIVE FOR SELECT TO @external_role@ USING (role::text <> ALL (CAST((SELECT ARRAY(SELECT jsonb_array_elements_text((\'\'{"forbidden_roles": ["affiant", "complainant", "victim", "witness"], "forbid_juveniles": true}\'\'::jsonb || coalesce((SELECT content FROM site_floor_versions ORDER BY version DESC LIMIT 1), \'\'{}\'\'::jsonb)) -> \'\'forbidden_roles\'\'))) AS text[])) AND (juvenile IS FALSE OR (SELECT coalesce((\'\'{"forbidden_roles": ["affiant", "complainant", "victim", "witness"], "forbid_juveniles": true}\'\'::jsonb || coalesce((SELECT content FROM site_floor_versions ORDER BY version DESC LIMIT 1), \'\'{}\'\'::jsonb)) -> \'\'forbid_juveniles\'\' = \'\'false\'\'::jsonb, false))) AND EXISTS (SELECT 1 FROM arrests a WHERE a.id = involvements.arrest_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY persons_floor ON persons AS RESTRICTIVE FOR SELECT TO @external_role@ USING (floor_visible)\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY person_aliases_floor ON person_aliases AS RESTRICTIVE FOR SELECT TO @external_role@ USING (EXISTS (SELECT 1 FROM persons p WHERE p.id = person_aliases.person_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY visible_persons_floor ON visible_persons AS RESTRICTIVE FOR SELECT TO @external_role@ USING (floor_visible)\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY charges_floor ON charges AS RESTRICTIVE FOR SELECT TO @external_role@ USING (EXISTS (SELECT 1 FROM arrests a WHERE a.id = charges.arrest_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY charging_decisions_floor ON charging_decisions AS RESTRICTIVE FOR SELECT TO @external_role@ USING (EXISTS (SELECT 1 FROM arrests a WHERE a.id = charging_decisions.arrest_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY bail_recommendations_floor ON bail_recommendations AS RESTRICTIVE FOR SELECT TO @external_role@ USING (EXISTS (SELECT 1 FROM arrests a WHERE a.id = bail_recommendations.arrest_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY arraignments_floor ON arraignments AS RESTRICTIVE FOR SELECT TO @external_role@ USING (EXISTS (SELECT 1 FROM arrests a WHERE a.id = arraignments.arrest_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); EXECUTE replace(replace(\'CREATE POLICY custody_events_floor ON custody_events AS RESTRICTIVE FOR SELECT TO @external_role@ USING (EXISTS (SELECT 1 FROM arrests a WHERE a.id = custody_events.arrest_id))\', \'@external_role@\', quote_ident(r)), \'@schema@\', quote_ident(current_schema())); END $do$', "DO $do$ DECLARE r name := openpars_external_role(); BEGIN EXECUTE replace(replace('GRANT USAGE ON SCHEMA @schema@ TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT SELECT ON arrests, involvements, persons, person_aliases, visible_persons, charges, charging_decisions, bail_recommendations, arraignments, custody_events, agreements, agreement_versions, agreement_suspensions, agreement_resumptions, site_floor_versions, visibility_sets, governance_generation TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT SELECT (id) ON audit_entries TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT INSERT ON audit_entries, audit_pending TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT SELECT, INSERT, UPDATE ON rate_slots TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT USAGE ON SEQUENCE audit_entries_id_seq TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT EXECUTE ON FUNCTION openpars_share_lock_agreements(integer) TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); EXECUTE replace(replace('GRANT EXECUTE ON FUNCTION openpars_share_lock_generation(integer) TO @external_role@', '@external_role@', quote_ident(r)), '@schema@', quote_ident(current_schema())); END $do$")


def upgrade() -> None:
    op.create_table('agencies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('ori', sa.String(length=9), nullable=True),
    sa.Column('kind', sa.Enum('police', 'da', 'court', 'pretrial', 'city', 'defender', 'external', name='agencykind', native_enum=False, length=20), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['agencies.id'], name=op.f('fk_agencies_parent_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agencies')),
    sa.UniqueConstraint('name', name=op.f('uq_agencies_name')),
    sa.UniqueConstraint('ori', name=op.f('uq_agencies_ori'))
    )
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agencies_parent_id'), ['parent_id'], unique=False)

    op.create_table('audit_agency_entries',
    sa.Column('agency_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('agency_id', 'at', 'entry_id', name=op.f('pk_audit_agency_entries')),
    sqlite_with_rowid=False
    )
    op.create_table('audit_arrest_entries',
    sa.Column('arrest_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('arrest_id', 'entry_id', name=op.f('pk_audit_arrest_entries')),
    sqlite_with_rowid=False
    )
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('log_vkey', sa.String(length=200), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints')),
    sa.UniqueConstraint('size', name=op.f('uq_audit_checkpoints_size'))
    )
    op.create_table('audit_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('index', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'index', name=op.f('pk_audit_nodes'))
    )
    op.create_table('audit_person_entries',
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'entry_id', name=op.f('pk_audit_person_entries')),
    sqlite_with_rowid=False
    )
    op.create_table('audit_user_entries',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'at', 'entry_id', name=op.f('pk_audit_user_entries')),
    sqlite_with_rowid=False
    )
    op.create_table('audit_witnesses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('vkey', sa.String(length=300), nullable=False),
    sa.Column('added_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_witnesses')),
    sa.UniqueConstraint('name', name=op.f('uq_audit_witnesses_name')),
    sa.UniqueConstraint('vkey', name=op.f('uq_audit_witnesses_vkey'))
    )
    op.create_table('governance_board_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('members', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('solo_actions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reminder_lead_days', sa.Integer(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_board_configs')),
    sa.UniqueConstraint('version', name=op.f('uq_governance_board_configs_version'))
    )
    op.create_table('governance_generation',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('token', sa.LargeBinary(length=16), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_governance_generation_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_generation'))
    )
    op.create_table('oversight_access_facts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('agreement_id', sa.Integer(), nullable=True),
    sa.Column('agreement_version', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=100), nullable=True),
    sa.Column('case_reference', sa.String(length=200), nullable=True),
    sa.Column('on_behalf_of', sa.String(length=200), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('criteria', sa.String(length=300), nullable=True),
    sa.Column('name_given', sa.Boolean(), nullable=False),
    sa.Column('identifier_given', sa.Boolean(), nullable=False),
    sa.Column('result_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_access_facts')),
    sa.UniqueConstraint('entry_id', 'person_id', name=op.f('uq_oversight_access_facts_entry_id_person_id'))
    )
    with op.batch_alter_table('oversight_access_facts', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_access_facts_agency_at', ['agency_id', 'at'], unique=False)
        batch_op.create_index('ix_oversight_access_facts_agreement_at', ['agreement_id', 'at'], unique=False)
        batch_op.create_index('ix_oversight_access_facts_case_at', ['case_reference', 'at'], unique=False)
        batch_op.create_index('ix_oversight_access_facts_user_at', ['user_id', 'at'], unique=False)

    op.create_table('oversight_access_queries',
    sa.Column('entry_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf_index', sa.BigInteger(), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_oversight_access_queries'))
    )
    with op.batch_alter_table('oversight_access_queries', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_access_queries_agreement_at', ['agreement_id', 'at'], unique=False)

    op.create_table('oversight_access_refusals',
    sa.Column('entry_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf_index', sa.BigInteger(), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_oversight_access_refusals'))
    )
    with op.batch_alter_table('oversight_access_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_access_refusals_agency_at', ['agency_id', 'at'], unique=False)

    op.create_table('oversight_arrestee_arrests',
    sa.Column('person_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('arrest_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('prev_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('citizenship', sa.String(length=100), nullable=True),
    sa.Column('place_of_birth', sa.String(length=100), nullable=True),
    sa.Column('race', sa.String(length=100), nullable=True),
    sa.Column('sex', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('person_id', 'arrest_id', name=op.f('pk_oversight_arrestee_arrests'))
    )
    with op.batch_alter_table('oversight_arrestee_arrests', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_arrestee_arrests_at', ['at', 'prev_at', 'citizenship', 'place_of_birth', 'race', 'sex', 'person_id'], unique=False)

    op.create_table('oversight_arrestee_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('prev_day', sa.String(length=10), nullable=True),
    sa.Column('citizenship', sa.String(length=100), nullable=True),
    sa.Column('place_of_birth', sa.String(length=100), nullable=True),
    sa.Column('race', sa.String(length=100), nullable=True),
    sa.Column('sex', sa.String(length=100), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_arrestee_days'))
    )
    op.create_table('oversight_charge_timeline',
    sa.Column('arrest_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('start_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('filed', sa.Boolean(), nullable=False),
    sa.Column('declined', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('arrest_id', 'start_at', name=op.f('pk_oversight_charge_timeline'))
    )
    op.create_table('oversight_explained_pairs',
    sa.Column('entry_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('person_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('agreement_id', sa.Integer(), nullable=True),
    sa.Column('agreement_version', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=100), nullable=True),
    sa.Column('case_reference', sa.String(length=200), nullable=True),
    sa.Column('on_behalf_of', sa.String(length=200), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('criteria', sa.String(length=300), nullable=True),
    sa.Column('name_given', sa.Boolean(), nullable=False),
    sa.Column('identifier_given', sa.Boolean(), nullable=False),
    sa.Column('result_count', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('never_charged', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', 'person_id', name=op.f('pk_oversight_explained_pairs'))
    )
    with op.batch_alter_table('oversight_explained_pairs', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_explained_pairs_agreement_at', ['agreement_id', 'at'], unique=False)
        batch_op.create_index('ix_oversight_explained_pairs_person', ['person_id'], unique=False)

    op.create_table('oversight_explanation_rules',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('rules', sa.String(length=2000), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_oversight_explanation_rules'))
    )
    op.create_table('oversight_flag_entries',
    sa.Column('flag_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('flag_id', 'entry_id', name=op.f('pk_oversight_flag_entries'))
    )
    with op.batch_alter_table('oversight_flag_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oversight_flag_entries_entry_id'), ['entry_id'], unique=False)

    op.create_table('oversight_user_days',
    sa.Column('user_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('agency_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('reads', sa.Integer(), nullable=False),
    sa.Column('hours', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'day', 'agency_id', name=op.f('pk_oversight_user_days'))
    )
    with op.batch_alter_table('oversight_user_days', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_user_days_day', ['day'], unique=False)

    op.create_table('oversight_watermarks',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_oversight_watermarks'))
    )
    op.create_table('persons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('middle_name', sa.String(length=100), nullable=True),
    sa.Column('name_key', sa.String(length=310).with_variant(sa.String(length=310, collation='C'), 'postgresql'), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('sex', sa.Enum('M', 'F', 'U', name='sex', native_enum=False), nullable=True),
    sa.Column('race', sa.Enum('W', 'B', 'I', 'A', 'P', 'U', name='race', native_enum=False), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('place_of_birth', sa.String(length=100), nullable=True),
    sa.Column('citizenship', sa.String(length=100), nullable=True),
    sa.Column('sid', sa.String(length=20), nullable=True),
    sa.Column('fbi_number', sa.String(length=20), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('floor_visible', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_persons'))
    )
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.create_index('ix_persons_birth_date', ['birth_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_persons_fbi_number'), ['fbi_number'], unique=False)
        batch_op.create_index('ix_persons_name_key', ['name_key', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_persons_sid'), ['sid'], unique=False)

    op.create_table('rate_slots',
    sa.Column('kind', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('owner_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at_us', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.CheckConstraint('kind IN (0, 1)', name=op.f('ck_rate_slots_ck_rate_slots_kind')),
    sa.CheckConstraint('slot >= 0', name=op.f('ck_rate_slots_ck_rate_slots_slot')),
    sa.PrimaryKeyConstraint('kind', 'owner_id', 'at_us', 'slot', name='pk_rate_slots'),
    sqlite_with_rowid=False
    )
    op.create_table('visibility_pending',
    sa.Column('person_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_visibility_pending'))
    )
    op.create_table('visibility_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('row_key', sa.String(length=1000), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('built_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visibility_sets')),
    sa.UniqueConstraint('row_key', name=op.f('uq_visibility_sets_row_key'))
    )
    op.create_table('agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('grantee_agency_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'pending_approval', 'scheduled', 'active', 'suspended', 'expired', 'terminated', name='agreementstatus', native_enum=False, length=20), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('active_version', sa.Integer(), nullable=True),
    sa.Column('in_force_from', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('in_force_until', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['grantee_agency_id'], ['agencies.id'], name=op.f('fk_agreements_grantee_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements')),
    sa.UniqueConstraint('name', name=op.f('uq_agreements_name'))
    )
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.create_index('ix_agreements_grantee_status', ['grantee_agency_id', 'status'], unique=False)

    op.create_table('audit_cosignatures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('checkpoint_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('witness_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['audit_checkpoints.id'], name=op.f('fk_audit_cosignatures_checkpoint_id_audit_checkpoints')),
    sa.ForeignKeyConstraint(['witness_id'], ['audit_witnesses.id'], name=op.f('fk_audit_cosignatures_witness_id_audit_witnesses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_cosignatures')),
    sa.UniqueConstraint('checkpoint_id', 'witness_id', name=op.f('uq_audit_cosignatures_checkpoint_id_witness_id'))
    )
    with op.batch_alter_table('audit_cosignatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_cosignatures_checkpoint_id'), ['checkpoint_id'], unique=False)

    op.create_table('governance_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('public_key', sa.String(length=44), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('revoked_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=100), nullable=True),
    sa.Column('revoke_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_governance_keys_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_keys')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_governance_keys_fingerprint'))
    )
    with op.batch_alter_table('governance_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_keys_agency_id'), ['agency_id'], unique=False)

    op.create_table('person_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('name_key', sa.String(length=310).with_variant(sa.String(length=310, collation='C'), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_person_aliases_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person_aliases'))
    )
    with op.batch_alter_table('person_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_aliases_name_key'), ['name_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_aliases_person_id'), ['person_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('password_changed_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('must_change_password', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('failed_logons', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('failed_logons_since', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('locked_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_logon_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enabled_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('mfa_secret', sa.String(length=200), nullable=True),
    sa.Column('mfa_pending_secret', sa.String(length=200), nullable=True),
    sa.Column('mfa_enrolled_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('mfa_last_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_users_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_agency_id'), ['agency_id'], unique=False)

    op.create_table('visible_persons',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('set_id', sa.Integer(), nullable=False),
    sa.Column('name_key', sa.String(length=310).with_variant(sa.String(length=310, collation='C'), 'postgresql'), nullable=False),
    sa.Column('sid', sa.String(length=20), nullable=True),
    sa.Column('fbi_number', sa.String(length=20), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('floor_visible', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_visible_persons_person_id_persons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_id'], ['visibility_sets.id'], name=op.f('fk_visible_persons_set_id_visibility_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', 'set_id', name=op.f('pk_visible_persons'))
    )
    with op.batch_alter_table('visible_persons', schema=None) as batch_op:
        batch_op.create_index('ix_visible_persons_name', ['set_id', 'name_key', 'person_id'], unique=False, postgresql_include=['floor_visible'])

    op.create_table('agreement_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.Enum('created', 'updated', 'proposed', 'adopted', 'renewed', 'amended', 'suspended', 'resumed', 'terminated', 'expired', 'kill_switch', 'kill_switch_resumed', name='eventkind', native_enum=False, length=30), nullable=False),
    sa.Column('from_status', sa.Enum('draft', 'pending_approval', 'scheduled', 'active', 'suspended', 'expired', 'terminated', name='agreementstatus', native_enum=False, length=20), nullable=True),
    sa.Column('to_status', sa.Enum('draft', 'pending_approval', 'scheduled', 'active', 'suspended', 'expired', 'terminated', name='agreementstatus', native_enum=False, length=20), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('effective_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_events_agreement_id_agreements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_events'))
    )
    with op.batch_alter_table('agreement_events', schema=None) as batch_op:
        batch_op.create_index('ix_agreement_events_agreement_at', ['agreement_id', 'at'], unique=False)

    op.create_table('agreement_suspensions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('target_kind', sa.Enum('agreement', 'unit', 'account', name='suspensiontarget', native_enum=False, length=20), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('suspended_by', sa.String(length=100), nullable=False),
    sa.Column('suspended_by_id', sa.Integer(), nullable=True),
    sa.Column('stakeholder_id', sa.Integer(), nullable=True),
    sa.Column('suspended_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_suspensions_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['stakeholder_id'], ['agencies.id'], name=op.f('fk_agreement_suspensions_stakeholder_id_agencies')),
    sa.ForeignKeyConstraint(['suspended_by_id'], ['users.id'], name=op.f('fk_agreement_suspensions_suspended_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_suspensions'))
    )
    with op.batch_alter_table('agreement_suspensions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_suspensions_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index('ix_agreement_suspensions_target', ['target_kind', 'target_id'], unique=False)

    op.create_table('agreement_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('effective_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('mask_key', sa.LargeBinary(length=32), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_versions_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_agreement_versions_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_versions')),
    sa.UniqueConstraint('agreement_id', 'version', name=op.f('uq_agreement_versions_agreement_id_version'))
    )
    with op.batch_alter_table('agreement_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_versions_content_hash'), ['content_hash'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('arrests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('otn', sa.String(length=20), nullable=True),
    sa.Column('incident_number', sa.String(length=30), nullable=True),
    sa.Column('ori', sa.String(length=9), nullable=False),
    sa.Column('arresting_officer', sa.String(length=100), nullable=False),
    sa.Column('arrested_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=True),
    sa.Column('arrest_type', sa.Enum('on_view', 'warrant', 'summons', name='arresttype', native_enum=False, length=20), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=True),
    sa.Column('state', sa.Enum('entered', 'charged', 'declined', 'arraigned', 'released', 'committed', name='arreststate', native_enum=False, length=20), nullable=False),
    sa.Column('docket_number', sa.String(length=30), nullable=True),
    sa.Column('source_agency_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.String(length=100), nullable=True),
    sa.Column('intake_digest', sa.String(length=64), nullable=True),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('sealed_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expunged_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('seal_order', sa.String(length=100), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entered_by_id'], ['users.id'], name=op.f('fk_arrests_entered_by_id_users')),
    sa.ForeignKeyConstraint(['source_agency_id'], ['agencies.id'], name=op.f('fk_arrests_source_agency_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arrests'))
    )
    with op.batch_alter_table('arrests', schema=None) as batch_op:
        batch_op.create_index('ix_arrests_arrested_at', ['arrested_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_arrests_docket_number'), ['docket_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_arrests_incident_number'), ['incident_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_arrests_otn'), ['otn'], unique=False)
        batch_op.create_index(batch_op.f('ix_arrests_source_agency_id'), ['source_agency_id'], unique=False)
        batch_op.create_index('ix_arrests_source_agency_id_report_id', ['source_agency_id', 'report_id'], unique=False)
        batch_op.create_index('ix_arrests_state', ['state'], unique=False)

    op.create_table('audit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.Enum('read', 'search', 'write', 'refused', 'login', 'login_failed', 'token', 'account', 'agreement', 'proposal', 'vote', 'export', 'feed', 'audit_read', 'config', 'key', 'oversight', name='auditkind', native_enum=False, length=20), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('outcome', sa.Enum('ok', 'refused', name='outcome', native_enum=False, length=10), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('agreement_id', sa.Integer(), nullable=True),
    sa.Column('commitment', sa.LargeBinary(length=32), nullable=False),
    sa.Column('person_ids', sa.Text().with_variant(sa.ARRAY(sa.BigInteger()), 'postgresql'), nullable=True),
    sa.Column('arrest_ids', sa.Text().with_variant(sa.ARRAY(sa.BigInteger()), 'postgresql'), nullable=True),
    sa.Column('salt', sa.LargeBinary(length=32), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.CheckConstraint('(salt IS NULL) = (content IS NULL)', name=op.f('ck_audit_entries_shredded_whole')),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_audit_entries_agency_id_agencies')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_entries_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    op.create_table('governance_key_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stakeholder_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('key_stakeholder_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('opened_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['governance_keys.id'], name=op.f('fk_governance_key_notices_key_id_governance_keys')),
    sa.ForeignKeyConstraint(['key_stakeholder_id'], ['agencies.id'], name=op.f('fk_governance_key_notices_key_stakeholder_id_agencies')),
    sa.ForeignKeyConstraint(['stakeholder_id'], ['agencies.id'], name=op.f('fk_governance_key_notices_stakeholder_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_key_notices'))
    )
    with op.batch_alter_table('governance_key_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_key_notices_stakeholder_id'), ['stakeholder_id'], unique=False)

    op.create_table('governance_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=True),
    sa.Column('agreement_version', sa.Integer(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('floor_content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('floor_base_hash', sa.String(length=64), nullable=True),
    sa.Column('action', sa.Enum('adopt', 'renew', 'amend', 'suspend', 'resume', 'terminate', 'floor', 'board', 'witness', name='proposalaction', native_enum=False, length=20), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('new_expires_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('effective_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('board_config_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('open', 'approved', 'applied', 'rejected', 'failed', 'voided', name='proposalstatus', native_enum=False, length=20), nullable=False),
    sa.Column('opened_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('opened_by_user_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('effective_instant', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applied_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_reason', sa.String(length=500), nullable=True),
    sa.Column('final_tally', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.CheckConstraint("(action IN ('floor', 'board', 'witness')) = (agreement_id IS NULL)", name=op.f('ck_governance_proposals_subject')),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_governance_proposals_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['board_config_id'], ['governance_board_configs.id'], name=op.f('fk_governance_proposals_board_config_id_governance_board_configs')),
    sa.ForeignKeyConstraint(['opened_by_user_id'], ['users.id'], name=op.f('fk_governance_proposals_opened_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_proposals'))
    )
    with op.batch_alter_table('governance_proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_proposals_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index('ix_governance_proposals_status_deadline', ['status', 'deadline'], unique=False)

    op.create_table('governance_renewal_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('stakeholder_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('evidence_url', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_governance_renewal_notices_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['stakeholder_id'], ['agencies.id'], name=op.f('fk_governance_renewal_notices_stakeholder_id_agencies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_renewal_notices')),
    sa.UniqueConstraint('agreement_id', 'stakeholder_id', 'expires_at', name=op.f('uq_governance_renewal_notices_agreement_id_stakeholder_id_expires_at'))
    )
    with op.batch_alter_table('governance_renewal_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_renewal_notices_agreement_id'), ['agreement_id'], unique=False)

    op.create_table('logon_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=30), nullable=True),
    sa.Column('source_ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('mfa_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('banner_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('proved_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_logon_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logon_sessions')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_logon_sessions_secret_hash'))
    )
    with op.batch_alter_table('logon_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logon_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('mfa_recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_recovery_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_recovery_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_mfa_recovery_codes_code_hash'))
    )
    with op.batch_alter_table('mfa_recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mfa_recovery_codes_user_id'), ['user_id'], unique=False)

    op.create_table('oversight_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('detector', sa.String(length=50), nullable=False),
    sa.Column('subject_user_id', sa.Integer(), nullable=True),
    sa.Column('subject_agency_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Enum('open', 'assigned', 'closed', name='casestate', native_enum=False, length=10), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('finding', sa.Enum('no_issue', 'training', 'sanction', 'referral_to_stakeholders', name='finding', native_enum=False, length=30), nullable=True),
    sa.Column('opened_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_oversight_cases_assignee_id_users')),
    sa.ForeignKeyConstraint(['subject_agency_id'], ['agencies.id'], name=op.f('fk_oversight_cases_subject_agency_id_agencies')),
    sa.ForeignKeyConstraint(['subject_user_id'], ['users.id'], name=op.f('fk_oversight_cases_subject_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_cases'))
    )
    with op.batch_alter_table('oversight_cases', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_cases_state', ['state', 'id'], unique=False)
        batch_op.create_index('ix_oversight_cases_subject', ['detector', 'subject_user_id', 'subject_agency_id'], unique=False)

    op.create_table('oversight_transparency_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('released_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_by_id', sa.Integer(), nullable=True),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('epsilon', sa.Float(), nullable=False),
    sa.Column('contributions_bound', sa.Integer(), nullable=False),
    sa.Column('scale', sa.Float(), nullable=False),
    sa.Column('mechanism', sa.String(length=200), nullable=False),
    sa.Column('library', sa.String(length=100), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['released_by_id'], ['users.id'], name=op.f('fk_oversight_transparency_releases_released_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_transparency_releases')),
    sa.UniqueConstraint('month', name=op.f('uq_oversight_transparency_releases_month'))
    )
    op.create_table('record_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.Enum('person', 'arrest', name='versionedentity', native_enum=False, length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('change', sa.Enum('create', 'amend', 'correct', 'charging', 'bail_recommendation', 'arraignment', 'custody', 'seal', 'unseal', 'expunge', 'link', name='changekind', native_enum=False, length=30), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('snapshot', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('changed_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_record_versions_changed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_versions')),
    sa.UniqueConstraint('entity', 'entity_id', 'version', name=op.f('uq_record_versions_entity_entity_id_version'))
    )
    op.create_table('site_floor_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('changed_by', sa.String(length=100), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_site_floor_versions_changed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_floor_versions')),
    sa.UniqueConstraint('version', name=op.f('uq_site_floor_versions_version'))
    )
    op.create_table('user_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('intake', 'charging', 'pretrial', 'court', 'reader', 'admin', 'agreement_admin', 'stakeholder_admin', 'sealed_access', 'voter', 'auditor', 'oversight', 'external_query', name='role', native_enum=False, length=30), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_roles')),
    sa.UniqueConstraint('user_id', 'role', name=op.f('uq_user_roles_user_id_role'))
    )
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_roles_user_id'), ['user_id'], unique=False)

    op.create_table('agreement_resumptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('suspension_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('resumed_by', sa.String(length=100), nullable=False),
    sa.Column('resumed_by_id', sa.Integer(), nullable=True),
    sa.Column('resumed_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['resumed_by_id'], ['users.id'], name=op.f('fk_agreement_resumptions_resumed_by_id_users')),
    sa.ForeignKeyConstraint(['suspension_id'], ['agreement_suspensions.id'], name=op.f('fk_agreement_resumptions_suspension_id_agreement_suspensions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement_resumptions')),
    sa.UniqueConstraint('suspension_id', name=op.f('uq_agreement_resumptions_suspension_id'))
    )
    op.create_table('arraignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrest_id', sa.Integer(), nullable=False),
    sa.Column('arraigned_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('magistrate', sa.String(length=100), nullable=False),
    sa.Column('bail_type', sa.Enum('ror', 'unsecured', 'nonmonetary', 'monetary', 'denied', name='bailtype', native_enum=False, length=20), nullable=False),
    sa.Column('bail_amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('conditions', sa.Text(), nullable=True),
    sa.Column('preliminary_hearing_date', sa.Date(), nullable=True),
    sa.Column('docket_number', sa.String(length=30), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_arraignments_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_arraignments_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arraignments')),
    sa.UniqueConstraint('arrest_id', name=op.f('uq_arraignments_arrest_id'))
    )
    op.create_table('audit_leaves',
    sa.Column('leaf_index', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['audit_entries.id'], name=op.f('fk_audit_leaves_entry_id_audit_entries')),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_audit_leaves')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_audit_leaves_entry_id'))
    )
    op.create_table('audit_pending',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['audit_entries.id'], name=op.f('fk_audit_pending_entry_id_audit_entries')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_audit_pending'))
    )
    op.create_table('bail_recommendations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrest_id', sa.Integer(), nullable=False),
    sa.Column('bail_type', sa.Enum('ror', 'unsecured', 'nonmonetary', 'monetary', 'denied', name='bailtype', native_enum=False, length=20), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('conditions', sa.Text(), nullable=True),
    sa.Column('recommended_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recommended_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_bail_recommendations_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['recommended_by_id'], ['users.id'], name=op.f('fk_bail_recommendations_recommended_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bail_recommendations'))
    )
    with op.batch_alter_table('bail_recommendations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bail_recommendations_arrest_id'), ['arrest_id'], unique=False)

    op.create_table('charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrest_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Enum('recommended', 'approved', name='chargestage', native_enum=False, length=20), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('statute', sa.String(length=40), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('grade', sa.Enum('F1', 'F2', 'F3', 'M1', 'M2', 'M3', 'S', name='grade', native_enum=False), nullable=False),
    sa.Column('counts', sa.Integer(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_charges_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_charges_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charges')),
    sa.UniqueConstraint('arrest_id', 'stage', 'revision', 'sequence', name=op.f('uq_charges_arrest_id_stage_revision_sequence'))
    )
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.create_index('ix_charges_arrest_grade', ['arrest_id', 'grade'], unique=False)
        batch_op.create_index(batch_op.f('ix_charges_statute'), ['statute'], unique=False)

    op.create_table('charging_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrest_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('approved', 'declined', 'modified', name='chargingoutcome', native_enum=False, length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_charging_decisions_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_charging_decisions_decided_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charging_decisions'))
    )
    with op.batch_alter_table('charging_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charging_decisions_arrest_id'), ['arrest_id'], unique=False)

    op.create_table('custody_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrest_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('released', 'committed', name='custodyoutcome', native_enum=False, length=20), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('facility', sa.String(length=200), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_custody_events_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_custody_events_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custody_events')),
    sa.UniqueConstraint('arrest_id', name=op.f('uq_custody_events_arrest_id'))
    )
    op.create_table('governance_proposal_replays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('months', sa.Integer(), nullable=False),
    sa.Column('since', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('until', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('computed_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('computed_by', sa.String(length=100), nullable=False),
    sa.Column('computed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('summary', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['computed_by_user_id'], ['users.id'], name=op.f('fk_governance_proposal_replays_computed_by_user_id_users')),
    sa.ForeignKeyConstraint(['proposal_id'], ['governance_proposals.id'], name=op.f('fk_governance_proposal_replays_proposal_id_governance_proposals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_proposal_replays'))
    )
    with op.batch_alter_table('governance_proposal_replays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_proposal_replays_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('governance_proposal_reports',
    sa.Column('proposal_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_governance_proposal_reports_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['proposal_id'], ['governance_proposals.id'], name=op.f('fk_governance_proposal_reports_proposal_id_governance_proposals')),
    sa.PrimaryKeyConstraint('proposal_id', name=op.f('pk_governance_proposal_reports'))
    )
    op.create_table('governance_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('stakeholder_id', sa.Integer(), nullable=False),
    sa.Column('voter_user_id', sa.Integer(), nullable=False),
    sa.Column('voter_username', sa.String(length=100), nullable=False),
    sa.Column('choice', sa.Enum('yes', 'no', 'abstain', name='choice', native_enum=False, length=10), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('signed', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('signed_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['governance_keys.id'], name=op.f('fk_governance_votes_key_id_governance_keys')),
    sa.ForeignKeyConstraint(['proposal_id'], ['governance_proposals.id'], name=op.f('fk_governance_votes_proposal_id_governance_proposals')),
    sa.ForeignKeyConstraint(['stakeholder_id'], ['agencies.id'], name=op.f('fk_governance_votes_stakeholder_id_agencies')),
    sa.ForeignKeyConstraint(['voter_user_id'], ['users.id'], name=op.f('fk_governance_votes_voter_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_votes')),
    sa.UniqueConstraint('signed_sha256', name=op.f('uq_governance_votes_signed_sha256'))
    )
    with op.batch_alter_table('governance_votes', schema=None) as batch_op:
        batch_op.create_index('ix_governance_votes_proposal_stakeholder', ['proposal_id', 'stakeholder_id'], unique=False)

    op.create_table('involvements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrest_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('arrestee', 'victim', 'witness', 'complainant', 'affiant', 'other', name='involvementrole', native_enum=False, length=20), nullable=False),
    sa.Column('juvenile', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_involvements_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_involvements_person_id_persons')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_involvements')),
    sa.UniqueConstraint('arrest_id', 'person_id', 'role', name=op.f('uq_involvements_arrest_id_person_id_role'))
    )
    with op.batch_alter_table('involvements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_involvements_arrest_id'), ['arrest_id'], unique=False)
        batch_op.create_index('ix_involvements_person_visibility', ['person_id', 'role', 'juvenile', 'arrest_id'], unique=False)

    op.create_table('oversight_canaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('arrest_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('arrest', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('planted_by_id', sa.Integer(), nullable=False),
    sa.Column('planted_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', openpars.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['arrest_id'], ['arrests.id'], name=op.f('fk_oversight_canaries_arrest_id_arrests')),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_oversight_canaries_confirmed_by_id_users')),
    sa.ForeignKeyConstraint(['person_id'], ['persons.id'], name=op.f('fk_oversight_canaries_person_id_persons')),
    sa.ForeignKeyConstraint(['planted_by_id'], ['users.id'], name=op.f('fk_oversight_canaries_planted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_canaries')),
    sa.UniqueConstraint('arrest_id', name=op.f('uq_oversight_canaries_arrest_id')),
    sa.UniqueConstraint('person_id', name=op.f('uq_oversight_canaries_person_id'))
    )
    op.create_table('oversight_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('detector', sa.String(length=50), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('subject_user_id', sa.Integer(), nullable=True),
    sa.Column('subject_agency_id', sa.Integer(), nullable=True),
    sa.Column('subject_agreement_id', sa.Integer(), nullable=True),
    sa.Column('raised_at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['oversight_cases.id'], name=op.f('fk_oversight_flags_case_id_oversight_cases')),
    sa.ForeignKeyConstraint(['subject_agency_id'], ['agencies.id'], name=op.f('fk_oversight_flags_subject_agency_id_agencies')),
    sa.ForeignKeyConstraint(['subject_user_id'], ['users.id'], name=op.f('fk_oversight_flags_subject_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_flags')),
    sa.UniqueConstraint('detector', 'dedupe_key', name=op.f('uq_oversight_flags_detector_dedupe_key'))
    )
    with op.batch_alter_table('oversight_flags', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_flags_agency_raised', ['subject_agency_id', 'raised_at'], unique=False)
        batch_op.create_index('ix_oversight_flags_case', ['case_id'], unique=False)

    op.create_table('governance_proposal_replay_queries',
    sa.Column('replay_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['replay_id'], ['governance_proposal_replays.id'], name=op.f('fk_governance_proposal_replay_queries_replay_id_governance_proposal_replays')),
    sa.PrimaryKeyConstraint('replay_id', 'position', name=op.f('pk_governance_proposal_replay_queries'))
    )
    op.create_table('oversight_case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', openpars.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('act', sa.Enum('opened', 'flag_added', 'assigned', 'noted', 'closed', name='caseact', native_enum=False, length=20), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('finding', sa.Enum('no_issue', 'training', 'sanction', 'referral_to_stakeholders', name='finding', native_enum=False, length=30), nullable=True),
    sa.Column('flag_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_oversight_case_events_actor_id_users')),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_oversight_case_events_assignee_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['oversight_cases.id'], name=op.f('fk_oversight_case_events_case_id_oversight_cases')),
    sa.ForeignKeyConstraint(['flag_id'], ['oversight_flags.id'], name=op.f('fk_oversight_case_events_flag_id_oversight_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oversight_case_events'))
    )
    with op.batch_alter_table('oversight_case_events', schema=None) as batch_op:
        batch_op.create_index('ix_oversight_case_events_case', ['case_id', 'id'], unique=False)


    ddl = SQLITE_DDL if op.get_bind().dialect.name == 'sqlite' else POSTGRESQL_DDL
    for statement in ddl:
        op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('oversight_case_events', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_case_events_case')

    op.drop_table('oversight_case_events')
    op.drop_table('governance_proposal_replay_queries')
    with op.batch_alter_table('oversight_flags', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_flags_case')
        batch_op.drop_index('ix_oversight_flags_agency_raised')

    op.drop_table('oversight_flags')
    op.drop_table('oversight_canaries')
    with op.batch_alter_table('involvements', schema=None) as batch_op:
        batch_op.drop_index('ix_involvements_person_visibility')
        batch_op.drop_index(batch_op.f('ix_involvements_arrest_id'))

    op.drop_table('involvements')
    with op.batch_alter_table('governance_votes', schema=None) as batch_op:
        batch_op.drop_index('ix_governance_votes_proposal_stakeholder')

    op.drop_table('governance_votes')
    op.drop_table('governance_proposal_reports')
    with op.batch_alter_table('governance_proposal_replays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_proposal_replays_proposal_id'))

    op.drop_table('governance_proposal_replays')
    op.drop_table('custody_events')
    with op.batch_alter_table('charging_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charging_decisions_arrest_id'))

    op.drop_table('charging_decisions')
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charges_statute'))
        batch_op.drop_index('ix_charges_arrest_grade')

    op.drop_table('charges')
    with op.batch_alter_table('bail_recommendations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bail_recommendations_arrest_id'))

    op.drop_table('bail_recommendations')
    op.drop_table('audit_pending')
    op.drop_table('audit_leaves')
    op.drop_table('arraignments')
    op.drop_table('agreement_resumptions')
    with op.batch_alter_table('user_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_roles_user_id'))

    op.drop_table('user_roles')
    op.drop_table('site_floor_versions')
    op.drop_table('record_versions')
    op.drop_table('oversight_transparency_releases')
    with op.batch_alter_table('oversight_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_cases_subject')
        batch_op.drop_index('ix_oversight_cases_state')

    op.drop_table('oversight_cases')
    with op.batch_alter_table('mfa_recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mfa_recovery_codes_user_id'))

    op.drop_table('mfa_recovery_codes')
    with op.batch_alter_table('logon_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_logon_sessions_user_id'))

    op.drop_table('logon_sessions')
    with op.batch_alter_table('governance_renewal_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_renewal_notices_agreement_id'))

    op.drop_table('governance_renewal_notices')
    with op.batch_alter_table('governance_proposals', schema=None) as batch_op:
        batch_op.drop_index('ix_governance_proposals_status_deadline')
        batch_op.drop_index(batch_op.f('ix_governance_proposals_agreement_id'))

    op.drop_table('governance_proposals')
    with op.batch_alter_table('governance_key_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_key_notices_stakeholder_id'))

    op.drop_table('governance_key_notices')
    op.drop_table('audit_entries')
    with op.batch_alter_table('arrests', schema=None) as batch_op:
        batch_op.drop_index('ix_arrests_state')
        batch_op.drop_index('ix_arrests_source_agency_id_report_id')
        batch_op.drop_index(batch_op.f('ix_arrests_source_agency_id'))
        batch_op.drop_index(batch_op.f('ix_arrests_otn'))
        batch_op.drop_index(batch_op.f('ix_arrests_incident_number'))
        batch_op.drop_index(batch_op.f('ix_arrests_docket_number'))
        batch_op.drop_index('ix_arrests_arrested_at')

    op.drop_table('arrests')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('agreement_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_versions_content_hash'))

    op.drop_table('agreement_versions')
    with op.batch_alter_table('agreement_suspensions', schema=None) as batch_op:
        batch_op.drop_index('ix_agreement_suspensions_target')
        batch_op.drop_index(batch_op.f('ix_agreement_suspensions_agreement_id'))

    op.drop_table('agreement_suspensions')
    with op.batch_alter_table('agreement_events', schema=None) as batch_op:
        batch_op.drop_index('ix_agreement_events_agreement_at')

    op.drop_table('agreement_events')
    with op.batch_alter_table('visible_persons', schema=None) as batch_op:
        batch_op.drop_index('ix_visible_persons_name', postgresql_include=['floor_visible'])

    op.drop_table('visible_persons')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_agency_id'))

    op.drop_table('users')
    with op.batch_alter_table('person_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_aliases_person_id'))
        batch_op.drop_index(batch_op.f('ix_person_aliases_name_key'))

    op.drop_table('person_aliases')
    with op.batch_alter_table('governance_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_keys_agency_id'))

    op.drop_table('governance_keys')
    with op.batch_alter_table('audit_cosignatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_cosignatures_checkpoint_id'))

    op.drop_table('audit_cosignatures')
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.drop_index('ix_agreements_grantee_status')

    op.drop_table('agreements')
    op.drop_table('visibility_sets')
    op.drop_table('visibility_pending')
    op.drop_table('rate_slots')
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_persons_sid'))
        batch_op.drop_index('ix_persons_name_key')
        batch_op.drop_index(batch_op.f('ix_persons_fbi_number'))
        batch_op.drop_index('ix_persons_birth_date')

    op.drop_table('persons')
    op.drop_table('oversight_watermarks')
    with op.batch_alter_table('oversight_user_days', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_user_days_day')

    op.drop_table('oversight_user_days')
    with op.batch_alter_table('oversight_flag_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oversight_flag_entries_entry_id'))

    op.drop_table('oversight_flag_entries')
    op.drop_table('oversight_explanation_rules')
    with op.batch_alter_table('oversight_explained_pairs', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_explained_pairs_person')
        batch_op.drop_index('ix_oversight_explained_pairs_agreement_at')

    op.drop_table('oversight_explained_pairs')
    op.drop_table('oversight_charge_timeline')
    op.drop_table('oversight_arrestee_days')
    with op.batch_alter_table('oversight_arrestee_arrests', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_arrestee_arrests_at')

    op.drop_table('oversight_arrestee_arrests')
    with op.batch_alter_table('oversight_access_refusals', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_access_refusals_agency_at')

    op.drop_table('oversight_access_refusals')
    with op.batch_alter_table('oversight_access_queries', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_access_queries_agreement_at')

    op.drop_table('oversight_access_queries')
    with op.batch_alter_table('oversight_access_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_oversight_access_facts_user_at')
        batch_op.drop_index('ix_oversight_access_facts_case_at')
        batch_op.drop_index('ix_oversight_access_facts_agreement_at')
        batch_op.drop_index('ix_oversight_access_facts_agency_at')

    op.drop_table('oversight_access_facts')
    op.drop_table('governance_generation')
    op.drop_table('governance_board_configs')
    op.drop_table('audit_witnesses')
    op.drop_table('audit_user_entries')
    op.drop_table('audit_person_entries')
    op.drop_table('audit_nodes')
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_arrest_entries')
    op.drop_table('audit_agency_entries')
    with op.batch_alter_table('agencies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agencies_parent_id'))

    op.drop_table('agencies')
