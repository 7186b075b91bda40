"""Weekly rectification notices (每周通报): cases across weeks, their lifecycle, the notice."""
