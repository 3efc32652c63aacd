"""The grid governance loop: the unit grid, the category catalogue, staged deadlines and
escalation, public figures and scorecards (issue 15)."""
