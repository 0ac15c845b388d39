"""Side effects that LinkDesk's Temporal workflows call: directory changes and notifications.

Every activity is synchronous, runs on a worker thread and works in one database transaction.
They are all defined with `no_thread_cancel_exception`: by default the SDK cancels a threaded
activity (its timeout ran out, or the workflow task that asked for it was evicted) by raising
an exception inside the thread, wherever it happens to be, which can land between taking a
lock and the `try` that gives it back, or half way through SQLAlchemy closing a transaction.
An activity that was cancelled runs to its end instead; its result is dropped, and its retry
is harmless because every activity is idempotent.

Each class implements an interface of `workflows.activity_interfaces`, through which the
workflow calls it by reference. An overriding method re-declares the interface's
`@activity.defn`, with the same name and options, because the worker registers the override.
"""
