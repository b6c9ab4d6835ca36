from forecast.cli import main

main(prog_name="forecast")
