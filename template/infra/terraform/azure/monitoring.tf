# Alerts and a dashboard as code. Every alert notifies the action group (e-mail to var.alert_email). Serving alerts
# and charts are in monitoring_<serving>.tf; this file holds what every serving mode shares.

resource "azurerm_monitor_action_group" "alerts" {
  name                = "${local.name}-alerts"
  resource_group_name = azurerm_resource_group.main.name
  short_name          = substr(replace(var.project, "-", ""), 0, 12)
  tags                = local.tags

  email_receiver {
    name                    = "owner"
    email_address           = var.alert_email
    use_common_alert_schema = true
  }
}

# DVC, CI and serving depend on the storage account; failed requests that are not the caller's fault show up here.
resource "azurerm_monitor_metric_alert" "storage_availability" {
  name                = "${local.name}-storage-availability"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [azurerm_storage_account.main.id]
  description         = "Storage availability below 99% over 15 minutes: DVC, CI and serving reads are failing."
  severity            = 2
  frequency           = "PT5M"
  window_size         = "PT15M"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.Storage/storageAccounts"
    metric_name      = "Availability"
    aggregation      = "Average"
    operator         = "LessThan"
    threshold        = 99
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}

locals {
  storage_charts = [
    {
      title       = "Storage transactions"
      resource_id = azurerm_storage_account.main.id
      namespace   = "microsoft.storage/storageaccounts"
      metric      = "Transactions"
      aggregation = 1 # sum
    },
    {
      title       = "Storage availability (%)"
      resource_id = azurerm_storage_account.main.id
      namespace   = "microsoft.storage/storageaccounts"
      metric      = "Availability"
      aggregation = 4 # average
    },
  ]

  # Two charts per row, serving first; serving charts exist once serving is deployed.
  dashboard_charts = concat(local.serving_charts, local.storage_charts)
}

resource "azurerm_portal_dashboard" "main" {
  name                = "${local.name}-dashboard"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = merge(local.tags, { "hidden-title" = "${var.project} (${var.environment})" })

  dashboard_properties = jsonencode({
    lenses = {
      "0" = {
        order = 0
        parts = {
          for index, chart in local.dashboard_charts : tostring(index) => {
            position = { x = (index % 2) * 6, y = floor(index / 2) * 4, colSpan = 6, rowSpan = 4 }
            metadata = {
              type = "Extension/HubsExtension/PartType/MonitorChartPart"
              inputs = [{
                name = "options"
                value = {
                  chart = {
                    title         = chart.title
                    visualization = { chartType = 2 }
                    metrics = [{
                      resourceMetadata    = { id = chart.resource_id }
                      name                = chart.metric
                      namespace           = chart.namespace
                      aggregationType     = chart.aggregation
                      metricVisualization = { displayName = chart.title }
                    }]
                  }
                }
              }]
            }
          }
        }
      }
    }
    metadata = {
      model = {
        timeRange = {
          type  = "MsPortalFx.Composition.Configuration.ValueTypes.TimeRange"
          value = { relative = { duration = 24, timeUnit = 1 } }
        }
      }
    }
  })
}
