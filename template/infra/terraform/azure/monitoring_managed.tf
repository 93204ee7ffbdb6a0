# Serving alerts for the online endpoint: server errors and latency (requests answered by the deployment).

locals {
  ml_endpoint_id = local.serving_enabled ? azapi_resource.ml_endpoint[0].id : ""

  serving_charts = local.serving_enabled ? [
    { title = "Requests per minute", resource_id = local.ml_endpoint_id, namespace = "microsoft.machinelearningservices/workspaces/onlineendpoints", metric = "RequestsPerMinute", aggregation = 4 },
    { title = "Request latency (ms)", resource_id = local.ml_endpoint_id, namespace = "microsoft.machinelearningservices/workspaces/onlineendpoints", metric = "RequestLatency", aggregation = 4 },
  ] : []
}

resource "azurerm_monitor_metric_alert" "endpoint_5xx" {
  count = local.serving_enabled ? 1 : 0

  name                = "${local.name}-endpoint-5xx"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [local.ml_endpoint_id]
  description         = "The online endpoint answers with server errors (5xx) for 5 minutes."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    metric_name      = "RequestsPerMinute"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = 1

    dimension {
      name     = "statusCodeClass"
      operator = "Include"
      values   = ["5xx"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}

resource "azurerm_monitor_metric_alert" "endpoint_latency" {
  count = local.serving_enabled ? 1 : 0

  name                = "${local.name}-endpoint-latency"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [local.ml_endpoint_id]
  description         = "Average request latency of the online endpoint above 500 ms for 15 minutes."
  severity            = 2
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    metric_name      = "RequestLatency"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = 500
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}
