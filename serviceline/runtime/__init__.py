"""A service's runtime: the app factory, its database, dependencies, kernel routes and jobs."""
