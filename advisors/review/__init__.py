"""The review queue page: cards, review actions, claims and live updates, in the admin shell."""
