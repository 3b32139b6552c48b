"""Plan: diff two models into ordered operations, each with its reverse and its hazards."""
