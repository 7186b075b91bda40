-- Evaluations and carbon grades say which months they cover (year to date: January to
-- through_month), and a carbon grade records the grid factor row and the gas factor used.
ALTER TABLE evaluations
    ADD COLUMN through_month smallint NOT NULL DEFAULT 12 CHECK (through_month BETWEEN 1 AND 12);

ALTER TABLE carbon_grades
    ADD COLUMN through_month smallint NOT NULL DEFAULT 12 CHECK (through_month BETWEEN 1 AND 12),
    ADD COLUMN months smallint CHECK (months BETWEEN 1 AND 12),
    ADD COLUMN factor_year integer,
    ADD COLUMN factor_region text,
    ADD COLUMN factor_kind text,
    ADD COLUMN gas_kg_co2_per_m3 double precision;

CREATE INDEX evaluations_year_idx ON evaluations (year, source);
