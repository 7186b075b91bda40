-- Yiwu's 14 towns and streets (镇街) as reference data; firms.town must name one.
-- A town is named by its short name (苏溪); its full name (苏溪镇, 稠城街道) is what people
-- write and is accepted on input. notice_unit is the body that receives notices.
CREATE TABLE towns (
    name        text PRIMARY KEY CHECK (name <> ''),
    full_name   text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('street', 'town')),
    notice_unit text NOT NULL,
    sort_order  integer NOT NULL UNIQUE
);

INSERT INTO towns (name, full_name, kind, notice_unit, sort_order)
SELECT t.name,
       t.name || CASE t.kind WHEN 'street' THEN '街道' ELSE '镇' END,
       t.kind,
       t.name || CASE t.kind WHEN 'street' THEN '街道办事处' ELSE '镇人民政府' END,
       t.sort_order
FROM (VALUES
    ('稠城', 'street', 1), ('北苑', 'street', 2), ('稠江', 'street', 3), ('江东', 'street', 4),
    ('后宅', 'street', 5), ('城西', 'street', 6), ('廿三里', 'street', 7), ('福田', 'street', 8),
    ('佛堂', 'town', 9), ('赤岸', 'town', 10), ('义亭', 'town', 11), ('上溪', 'town', 12),
    ('大陈', 'town', 13), ('苏溪', 'town', 14)
) AS t (name, kind, sort_order);

-- Firms and town keys registered under a full name (or the notice unit's name) get the
-- short one: a key scoped to 苏溪 then sees the firms registered as 苏溪镇.
UPDATE firms f SET town = t.name
FROM towns t
WHERE btrim(f.town) IN (t.name, t.full_name, t.notice_unit) AND f.town <> t.name;

UPDATE api_keys k SET scope = t.name
FROM towns t
WHERE k.role = 'town' AND btrim(k.scope) IN (t.name, t.full_name, t.notice_unit)
  AND k.scope <> t.name;

-- Anything else is not a Yiwu town: stop here (nothing is changed) and say which.
DO $$
DECLARE
    unknown text;
BEGIN
    SELECT string_agg(DISTINCT quote_literal(town), ', ') INTO unknown
    FROM firms WHERE town NOT IN (SELECT name FROM towns);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'firms name towns that are not Yiwu''s: %; set them to one of the '
            'towns table''s names (e.g. UPDATE firms SET town = ''苏溪'' WHERE town = ...) '
            'and migrate again', unknown;
    END IF;
END
$$;

ALTER TABLE firms
    ADD CONSTRAINT firms_town_fkey FOREIGN KEY (town) REFERENCES towns (name) ON UPDATE CASCADE;
