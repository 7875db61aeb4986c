from training.forecast.train import main

main()
