# serving = none: nothing is deployed, so there are no serving alerts or charts.
locals {
  serving_charts = []
}
