"""The event table: who did what, when, to which object, with the fields before and after."""
