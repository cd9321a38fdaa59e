"""The course report: which run feeds which section (runs), the template filled (render), section 1 (data),
section 2 (model), the other bodies and the answers (answers), M8 from the Optuna study (optuna)."""
