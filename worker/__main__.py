"""`python -m worker`: run the Temporal worker until SIGINT or SIGTERM."""

from worker.main import main

if __name__ == "__main__":
    main()
