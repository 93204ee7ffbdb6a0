# Serving alerts for the container app: server errors, latency, restarts (crash loops, failing liveness probes).

locals {
  container_app_id = local.serving_enabled ? azurerm_container_app.service[0].id : ""

  serving_charts = local.serving_enabled ? [
    { title = "Requests", resource_id = local.container_app_id, namespace = "microsoft.app/containerapps", metric = "Requests", aggregation = 1 },
    { title = "Response time (ms)", resource_id = local.container_app_id, namespace = "microsoft.app/containerapps", metric = "ResponseTime", aggregation = 4 },
    { title = "Replicas", resource_id = local.container_app_id, namespace = "microsoft.app/containerapps", metric = "Replicas", aggregation = 3 },
    { title = "Restarts", resource_id = local.container_app_id, namespace = "microsoft.app/containerapps", metric = "RestartCount", aggregation = 1 },
  ] : []
}

resource "azurerm_monitor_metric_alert" "service_5xx" {
  count = local.serving_enabled ? 1 : 0

  name                = "${local.name}-service-5xx"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [local.container_app_id]
  description         = "More than 5 server errors (5xx) in 5 minutes: the service fails requests it should answer."
  severity            = 1
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.App/containerApps"
    metric_name      = "Requests"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 5

    dimension {
      name     = "statusCodeCategory"
      operator = "Include"
      values   = ["5xx"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}

resource "azurerm_monitor_metric_alert" "service_latency" {
  count = local.serving_enabled ? 1 : 0

  name                = "${local.name}-service-latency"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [local.container_app_id]
  description         = "Average response time above 500 ms for 10 minutes."
  severity            = 2
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.App/containerApps"
    metric_name      = "ResponseTime"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = 500
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}

resource "azurerm_monitor_metric_alert" "service_restarts" {
  count = local.serving_enabled ? 1 : 0

  name                = "${local.name}-service-restarts"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [local.container_app_id]
  description         = "Replicas restarted more than twice in 15 minutes: crash loop or failing /health probe."
  severity            = 1
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.App/containerApps"
    metric_name      = "RestartCount"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 2
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}
