"""Reading what 1C sends: stock reports, price tables, nomenclature (spreadsheets, CSV, CommerceML)."""
