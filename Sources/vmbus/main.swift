print("vmbus: under construction")
