-- Reference data edited through the API and imported from sheets (registry/reference/).
-- A firm's project is known by its name: importing a sheet again updates the project
-- instead of doubling it; and every project, like every other reference row, names its source.
CREATE UNIQUE INDEX firm_projects_name_idx ON firm_projects (firm_id, name);
ALTER TABLE firm_projects ADD CONSTRAINT firm_projects_source_check CHECK (source <> '');
