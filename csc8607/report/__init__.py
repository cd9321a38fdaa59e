"""The course report: which run feeds which section (runs), the template filled (render), section 1 (data),
section 2 (model), the other bodies and the answers (answers), M8 from the Optuna study (optuna), report.py's
writing (write) and `make report`'s steps (pipeline). What each section is comes from csc8607.sections.SECTIONS."""
