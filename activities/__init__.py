"""Side effects that LinkDesk's Temporal workflows call: directory changes and notifications."""
