"""Server-rendered pages for people; they call the same service layer as the JSON API."""
